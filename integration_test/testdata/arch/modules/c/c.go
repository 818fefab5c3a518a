// Package c is a module that a may not reach.
package c

// Name is c's facade.
func Name() string { return "c" }
