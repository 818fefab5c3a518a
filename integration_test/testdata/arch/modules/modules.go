// Package modules is the fixture's shared module plumbing: every module may
// import it, and it is no module itself.
package modules

// Deps is what every module is built from.
type Deps struct{}
