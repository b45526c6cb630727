//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// FluentBitConfigMap holds the Fluent Bit config the stack runs: the one
// k8s/ deploys, with only ports, listen addresses and paths changed.
const FluentBitConfigMap = "k8s/fluent-bit/configmap.yaml"

// The node name the stack's Fluent Bit stamps on tailed records, as the
// DaemonSet's NODE_NAME does.
const fluentBitNode = "e2e-node"

// StartFluentBit starts (or restarts, on the same ports and with the same
// storage and tail offsets) Fluent Bit with k8s/fluent-bit's config.
func (s *Stack) StartFluentBit(ctx context.Context) error {
	conf, err := s.writeFluentBitConfig()
	if err != nil {
		return err
	}
	p, err := s.start("fluent-bit", []string{
		"NODE_NAME=" + fluentBitNode,
		"LOG_STORE_HOST=127.0.0.1",
		"LOG_STORE_PORT=" + strconv.Itoa(s.Ports.LogStore),
	}, s.bin("bin/fluent-bit"), "-c", conf)
	if err != nil {
		return err
	}
	return waitReady(ctx, p, 30*time.Second, httpOK("http://"+addr(s.Ports.FluentBitHTTP)+"/api/v1/health"))
}

// writeFluentBitConfig writes the ConfigMap's files into the work directory
// with the local ports and paths, and returns fluent-bit.conf's path.
func (s *Stack) writeFluentBitConfig() (string, error) {
	path := s.bin(FluentBitConfigMap)
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	for _, key := range []string{"fluent-bit.conf", "parsers.conf"} {
		if cm.Data[key] == "" {
			return "", fmt.Errorf("%s: no data.%s", path, key)
		}
	}
	conf, dirs, err := localizeFluentBit(cm.Data["fluent-bit.conf"], s.opts.Work, map[string]int{"Port": 4318, "HTTP_Port": 2020},
		map[string]int{"Port": s.Ports.FluentBit, "HTTP_Port": s.Ports.FluentBitHTTP})
	if err != nil {
		return "", fmt.Errorf("%s: data.fluent-bit.conf: %w", path, err)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	if _, err := s.writeFile("fluent-bit/parsers.conf", cm.Data["parsers.conf"]); err != nil {
		return "", err
	}
	return s.writeFile("fluent-bit/fluent-bit.conf", conf)
}

// fluentBitPathKeys are the keys whose values are files or directories.
var fluentBitPathKeys = map[string]bool{"Path": true, "DB": true, "storage.path": true, "Parsers_File": true}

// localizeFluentBit rewrites a classic-format Fluent Bit config for a local
// run: each key in ports whose value is that port gets the local one, the
// 0.0.0.0 listen addresses become 127.0.0.1, and every absolute file or
// directory moves under root. It returns the directories the paths need, and an error when
// a port it was told to replace is not there (the config changed under
// the test). Nothing else changes.
func localizeFluentBit(conf, root string, ports, local map[string]int) (string, []string, error) {
	var out strings.Builder
	var dirs []string
	seen := map[string]bool{}
	for line := range strings.Lines(conf) {
		body := strings.TrimRight(line, "\n")
		trimmed := strings.TrimLeft(body, " \t")
		indent := body[:len(body)-len(trimmed)]
		key, val, ok := strings.Cut(trimmed, " ")
		if !ok || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "[") {
			out.WriteString(line)
			continue
		}
		gap := " " + val[:len(val)-len(strings.TrimLeft(val, " \t"))]
		val = strings.TrimSpace(val)
		switch {
		case ports[key] != 0 && val == strconv.Itoa(ports[key]):
			val = strconv.Itoa(local[key])
			seen[key] = true
		case (key == "Listen" || key == "HTTP_Listen") && val == "0.0.0.0":
			val = "127.0.0.1"
		case fluentBitPathKeys[key] && strings.HasPrefix(val, "/"):
			moved := filepath.Join(root, val)
			if strings.HasSuffix(val, "/") {
				val = moved + "/"
				dirs = append(dirs, moved)
			} else {
				val = moved
				dirs = append(dirs, filepath.Dir(moved))
			}
		}
		fmt.Fprintf(&out, "%s%s%s%s\n", indent, key, gap, val)
	}
	for key, port := range ports {
		if !seen[key] {
			return "", nil, fmt.Errorf("no %q set to %d to replace with a free port", key, port)
		}
	}
	slices.Sort(dirs)
	return out.String(), slices.Compact(dirs), nil
}

// containerLog creates a container's log file where the kubelet's container
// runtime keeps it, /var/log/pods/<namespace>_<pod>_<uid>/<container>/0.log
// under the work directory, and the kubelet's symlink to it,
// /var/log/containers/<pod>_<namespace>_<container>-<container id>.log,
// which Fluent Bit's tail input reads. It returns the file's path.
func (s *Stack) containerLog(pod, uid, container string) (string, error) {
	file := s.path(filepath.Join("var/log/pods", Namespace+"_"+pod+"_"+uid, container, "0.log"))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return "", err
	}
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return "", err
	}
	f.Close()
	id := sha256.Sum256([]byte(pod + "/" + container))
	link := s.path(filepath.Join("var/log/containers", pod+"_"+Namespace+"_"+container+"-"+hex.EncodeToString(id[:])+".log"))
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return "", err
	}
	if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
		return "", err
	}
	return file, os.Symlink(file, link)
}
