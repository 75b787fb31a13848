package gitops

// AtRevision writes the config folder as of rev to a temporary folder (so
// that references to files in the repository resolve as they would have),
// calls fn with it, and removes it: what databus replay --rev builds
// through the gate.
func (r *Repo) AtRevision(rev string, fn func(dir string) error) error {
	c, err := r.commitOf(rev)
	if err != nil {
		return err
	}
	return r.inTempDir(c, fn)
}
