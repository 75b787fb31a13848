package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/databus-gateway/databus/engine/config/configtest"
)

// genRepo writes the scale bench's repository of n APIs
// (configtest.ScaleFiles) into dir, which must be empty or absent; its
// http steps call upstream (host:port).
func genRepo(dir string, n int, upstream string) error {
	if n < 1 || n > configtest.MaxScaleAPIs {
		return fmt.Errorf("genrepo: -n %d: expected 1 to %d APIs", n, configtest.MaxScaleAPIs)
	}
	if upstream == "" || strings.Contains(upstream, "/") {
		return fmt.Errorf("genrepo: -upstream %q: expected host:port", upstream)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("genrepo: %s is not empty", dir)
	}
	return configtest.WriteFiles(dir, configtest.ScaleFiles(n, upstream))
}
