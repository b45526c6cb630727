package payload

import (
	"errors"
	"fmt"
)

// Sentinel errors of ParseSize, wrapped with the offending input.
var (
	ErrNotInteger = errors.New("size must be a plain decimal integer")
	ErrOutOfRange = errors.New("size out of range")
)

// maxDigits bounds the parse below int64 overflow (19 digits reach 9.2e18).
const maxDigits = 18

// ParseSize parses a size of ASCII digits only (no sign, space or exponent) within [min, max].
func ParseSize(s string, min, max int64) (int64, error) {
	// Checked by hand, not by strconv.ParseInt, which accepts a leading sign;
	// nothing here allocates on success, as the hot path needs.
	if s == "" {
		return 0, fmt.Errorf("%w: empty", ErrNotInteger)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %q", ErrNotInteger, s)
		}
	}
	digits := s
	for len(digits) > 1 && digits[0] == '0' {
		digits = digits[1:]
	}
	if len(digits) > maxDigits {
		return 0, fmt.Errorf("%w: %s is not in [%d, %d]", ErrOutOfRange, s, min, max)
	}
	var n int64
	for i := 0; i < len(digits); i++ {
		n = n*10 + int64(digits[i]-'0')
	}
	if n < min || n > max {
		return 0, fmt.Errorf("%w: %d is not in [%d, %d]", ErrOutOfRange, n, min, max)
	}
	return n, nil
}
