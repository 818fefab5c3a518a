// Package x is b's own business.
package x

// Name is for b alone.
func Name() string { return "x" }
