package gateway

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/metrics"
	"github.com/databus-gateway/databus/engine/store"
)

// openStorage opens the bbolt file (Options.StoragePath, storage.path or
// the default outside the repository: config.ResolveStoragePath) and the
// access log. Both are boot-time: they do not reload.
func (s *Server) openStorage(st *config.Settings, repoDir string) error {
	path := config.ResolveStoragePath(st, repoDir, s.opts.StoragePath)
	s.storagePath = path
	db, err := store.Open(path, time.Second)
	if err != nil {
		return err
	}
	al := st.Storage.AccessLog
	var export io.Writer
	switch {
	case al.Export == "stdout":
		export = os.Stdout
	case strings.HasPrefix(al.Export, "file:"):
		p := strings.TrimPrefix(al.Export, "file:")
		if !filepath.IsAbs(p) {
			p = filepath.Join(repoDir, p)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			db.Close()
			return fmt.Errorf("storage.accessLog.export: %w", err)
		}
		s.exportFile = f
		export = f
	}
	acc, err := db.AccessLog(store.LogOptions{
		Sync:          al.Mode == "sync",
		QueueSize:     al.QueueSize,
		RetentionDays: al.RetentionDays,
		MaxRecords:    al.MaxRecords,
		Export:        export,
		Logger:        s.log,
		Observer:      metrics.AccessLogObserver{M: s.metrics},
	})
	if err != nil {
		db.Close()
		if s.exportFile != nil {
			s.exportFile.Close()
			s.exportFile = nil
		}
		return err
	}
	s.db, s.acc = db, acc
	s.log.Info("storage opened", "path", db.Path(), "accessLog", al.Mode, "retentionDays", al.RetentionDays)
	return nil
}

// closeStorage flushes the access log and closes the file.
func (s *Server) closeStorage() {
	if s.acc != nil {
		if err := s.acc.Close(); err != nil {
			s.log.Error("access log flush failed", "error", err)
		}
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.log.Error("closing storage failed", "error", err)
		}
	}
	if s.exportFile != nil {
		s.exportFile.Close()
	}
}
