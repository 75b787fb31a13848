// Package gitops reads a config repository's history through git: the
// revision being served, the versions of an API (the commits that changed its
// file), the repository as of any revision, a semantic diff between two
// revisions, and the rollback of one API to an earlier revision.
//
// It uses go-git, so no git binary is needed at run time. The config
// repository may be a sub-folder of the git work tree; every path this
// package takes or returns is relative to the config repository (the
// folder holding databus.yaml, apis/, credentials/ and policies/) and
// slash-separated.
//
// A Repo opens the git repository anew for every call, so a long-lived Repo
// sees commits, fetches and garbage collection made by other processes, and
// calls may run concurrently. Nothing here pushes, fetches or runs hooks.
//
// Errors a caller acts on wrap one of the sentinels ErrNotGit, ErrNotFound,
// ErrAmbiguous and ErrInvalid; test them with errors.Is.
package gitops
