package config

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxFileSize bounds the checks file; anything larger is a mistake (or an attack).
const maxFileSize = 16 << 20

const internalErrorMsg = "internal error while reading this file; please report it"

var utf8BOM = []byte("\xef\xbb\xbf")

// Load reads, parses, defaults and validates the checks file at path (see Parse).
func Load(path string) (*File, error) {
	// Every error is an *Error (or several joined) whose text starts with path.
	data, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, readError(path, err)
	}
	if len(data) > maxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize), Kind: ErrRead}
	}
	return data, nil
}

func readError(path string, err error) error {
	return &Error{File: path, Msg: "cannot read file: " + unwrapPath(err).Error(), Kind: ErrRead, Cause: err}
}

// Parse parses, defaults and validates data read from path, GoHeartbeat JSON or YAML, reporting every problem.
func Parse(path string, data []byte) (*File, error) {
	// path only names the file in errors and anchors relative ca_file,
	// password_file and ${file:...} paths. The format is the legacy
	// GoHeartbeat JSON-with-comments file when the first byte that is not
	// white space or a comment is '{', and YAML otherwise; a '{' file whose
	// top-level object has a "checks" key is the YAML format written as JSON.
	// Secrets are resolved from the environment and files now. All problems
	// are reported, at most 20, sorted by line and joined with errors.Join;
	// each is an *Error.
	return parse(path, data, os.LookupEnv)
}

func parse(path string, data []byte, lookup func(string) (string, bool)) (f *File, err error) {
	// A reload must never take the sidecar down, whatever the bytes. The
	// fuzz tests call parseYAML and parseLegacy directly, so they still see
	// any panic this would hide.
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, &Error{File: path, Msg: internalErrorMsg, Kind: ErrSyntax}
		}
	}()
	res := secretResolver{baseDir: filepath.Dir(path), lookup: lookup}
	body := bytes.TrimPrefix(data, utf8BOM) // some Windows editors add one
	switch {
	case isLegacy(body):
		f, err = parseLegacy(path, body)
	default:
		f, err = parseYAML(path, body, res)
	}
	if err != nil {
		return nil, err
	}
	f.digest = sha256.Sum256(data)
	return f, nil
}

// isLegacy implements the format rule: '{' first, and no "checks" or
// "defaults" key at the top level (those make it YAML written as JSON).
func isLegacy(data []byte) bool {
	rest := skipSpaceAndComments(data)
	if len(rest) == 0 || rest[0] != '{' {
		return false
	}
	return !looksLikeYAMLAsJSON(data)
}

// skipSpaceAndComments skips a BOM, white space, and //, /* */ and # comments.
func skipSpaceAndComments(b []byte) []byte {
	b = bytes.TrimPrefix(b, utf8BOM)
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		switch {
		case bytes.HasPrefix(b, []byte("//")), bytes.HasPrefix(b, []byte("#")):
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return nil
			}
			b = b[i+1:]
		case bytes.HasPrefix(b, []byte("/*")):
			i := bytes.Index(b[2:], []byte("*/"))
			if i < 0 {
				return nil
			}
			b = b[i+4:]
		default:
			return b
		}
	}
}
