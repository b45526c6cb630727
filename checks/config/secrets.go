package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// maxSecretFile bounds a ${file:...}, password_file or ca_file read.
const maxSecretFile = 1 << 20

// secretResolver expands ${env:NAME} and ${file:/path} references in the
// values that may carry secrets: header values, the body, basic-auth
// username and password, and tcp.send. "$${" stands for a literal "${".
// Any other "${" is left alone, so bodies holding templates need no escaping.
type secretResolver struct {
	baseDir string // relative ${file:...} paths are relative to the checks file
	lookup  func(string) (string, bool)
}

// resolve returns s with every reference replaced. Its error message names
// the variable or file but never the value.
func (r secretResolver) resolve(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		rest := s[i+2:]
		var kind string
		switch {
		case strings.HasPrefix(rest, "env:"):
			kind = "env"
		case strings.HasPrefix(rest, "file:"):
			kind = "file"
		default:
			b.WriteString("${")
			s = rest
			continue
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return "", fmt.Errorf("${%s:...} reference has no closing }", kind)
		}
		arg := rest[len(kind)+1 : end]
		val, err := r.fetch(kind, arg)
		if err != nil {
			return "", err
		}
		b.WriteString(val)
		s = rest[end+1:]
	}
}

func (r secretResolver) fetch(kind, arg string) (string, error) {
	if arg == "" {
		return "", fmt.Errorf("${%s:} needs a %s", kind, map[string]string{"env": "variable name", "file": "path"}[kind])
	}
	if kind == "env" {
		v, ok := r.lookup(arg)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", arg)
		}
		return v, nil
	}
	data, err := readSmallFile(r.path(arg))
	if err != nil {
		return "", err
	}
	return trimNewline(string(data)), nil
}

// path makes a relative path relative to the checks file's directory, as
// Prometheus does for its *_file settings.
func (r secretResolver) path(p string) string {
	if filepath.IsAbs(p) || r.baseDir == "" {
		return p
	}
	return filepath.Join(r.baseDir, p)
}

// readSmallFile reads a regular file of at most maxSecretFile bytes. Devices
// and FIFOs are refused: reading /dev/zero or a pipe would never end.
func readSmallFile(p string) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", p, unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("cannot read %q: not a regular file", p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", p, unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", p, unwrapPath(err))
	}
	if len(data) > maxSecretFile {
		return nil, fmt.Errorf("cannot read %q: larger than %d bytes", p, maxSecretFile)
	}
	return data, nil
}

// unwrapPath drops *fs.PathError's "open /path" prefix, which the caller's
// message already carries.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// trimNewline drops one trailing line break: secret files are usually
// written by echo or editors, and a newline in a header would be invalid.
func trimNewline(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r")
}
