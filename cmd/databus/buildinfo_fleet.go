package main

import "runtime/debug"

// buildVersion names this binary as the fleet view shows it: the version
// set at build time (-ldflags "-X main.version=..."), else the module's,
// else "dev", with the first 12 digits of the VCS revision when the build
// recorded one.
func buildVersion() string {
	v, rev := version, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if rev != "" {
		v += " (" + rev + ")"
	}
	return v
}
