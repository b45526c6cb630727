package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Sentinel errors; every error from Load, Parse and Validate wraps one of
// them, so callers can tell the kinds apart with errors.Is.
var (
	// ErrRead means the file could not be read; the *fs.PathError is wrapped too.
	ErrRead = errors.New("cannot read file")
	// ErrSyntax means the file is not well-formed YAML or JSON.
	ErrSyntax = errors.New("syntax error")
	// ErrUnknownField means a key the format does not define.
	ErrUnknownField = errors.New("unknown field")
	// ErrWrongType means a value of the wrong kind (a list where a string belongs, ...).
	ErrWrongType = errors.New("wrong type")
	// ErrMissingField means a required field is absent.
	ErrMissingField = errors.New("missing field")
	// ErrDuplicate means a repeated check name, header or URL.
	ErrDuplicate = errors.New("duplicate")
	// ErrInvalidValue means a value of the right kind that is not allowed (out of range, bad regexp, ...).
	ErrInvalidValue = errors.New("invalid value")
	// ErrSecret means a ${env:...}, ${file:...} or password_file reference could not be resolved.
	ErrSecret = errors.New("unresolved secret")
)

// maxErrors bounds how many problems one Parse reports; a file with a
// systematic mistake repeated over thousands of checks should not flood logs.
const maxErrors = 20

// Error is one problem in a checks file, printed as "<file>:<line>: <field>: <message>".
type Error struct {
	// E.g. "checks.yaml:12: checks[2].timeout: must be less than interval
	// (10s)". ":<line>" is left out when the line is unknown (the file cannot
	// be read, or a File built in code is validated) and "<field>: " when no
	// single field is at fault (syntax errors). Messages never contain header
	// values, bodies, passwords or URL passwords.

	File  string // as given to Load or Parse; "" for Validate on a File built in code
	Line  int    // 1-based; 0 when unknown
	Field string // path such as "checks[2].http.headers.Authorization"; "" when none
	Msg   string
	Kind  error // one of the Err* sentinels
	Cause error // underlying error (e.g. *fs.PathError), or nil
}

// Error formats the problem in the fixed "<file>:<line>: <field>: <message>" form.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel and the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// problem is a validation finding before it is placed in a file.
type problem struct {
	field string // relative to the thing validated
	msg   string
	kind  error
}

func probf(field string, kind error, format string, args ...any) problem {
	return problem{field: field, msg: fmt.Sprintf(format, args...), kind: kind}
}

// errList collects located errors for one Parse.
type errList struct {
	file string
	errs []*Error
	// bad holds field paths that already failed to decode, so validation
	// does not pile a second, confusing error on the same field.
	bad map[string]bool
}

func newErrList(file string) *errList {
	return &errList{file: file, bad: map[string]bool{}}
}

func (l *errList) add(line int, field string, kind error, format string, args ...any) {
	msg := oneLine(fmt.Sprintf(format, args...))
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Field: oneLine(field), Msg: msg, Kind: kind})
	if field != "" {
		l.bad[field] = true
	}
}

// covered reports whether field, or a path containing or contained in it,
// already has an error.
func (l *errList) covered(field string) bool {
	for b := range l.bad {
		if b == field || within(b, field) || within(field, b) {
			return true
		}
	}
	return false
}

// within reports whether path p lies inside path parent.
func within(p, parent string) bool {
	return strings.HasPrefix(p, parent) && len(p) > len(parent) && (p[len(parent)] == '.' || p[len(parent)] == '[')
}

// err returns nil, the single error, or all of them (sorted by line, at most
// maxErrors) joined with errors.Join: one error per line of Error().
func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Field, b.Field))
	})
	if len(l.errs) == 1 {
		return l.errs[0]
	}
	n := min(len(l.errs), maxErrors)
	out := make([]error, 0, n+1)
	for _, e := range l.errs[:n] {
		out = append(out, e)
	}
	if extra := len(l.errs) - n; extra > 0 {
		// Keeps the first error's kind so errors.Is still answers sensibly.
		out = append(out, &Error{File: l.file, Msg: fmt.Sprintf("%d more errors not shown", extra), Kind: l.errs[n].Kind})
	}
	return errors.Join(out...)
}

// joinPath appends a key to a field path.
func joinPath(path, key string) string {
	if !plainKey(key) {
		key = strconv.Quote(key)
		if path == "" {
			return "[" + key + "]"
		}
		return path + "[" + key + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// subPath appends a relative field path (from problems) to path.
func subPath(path, rel string) string {
	switch {
	case path == "":
		return rel
	case strings.HasPrefix(rel, "["):
		return path + rel
	}
	return path + "." + rel
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// oneLine escapes control characters (library messages may quote a raw
// newline from the input), so that every error is exactly one line.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
