// Package duckdb proves the lake's Parquet export readable by an analytics
// engine nobody here wrote: DuckDB reads the files the manifest lists, and
// its count and checksum must equal the lake's for the same positions. It
// is a module of its own because DuckDB's Go driver needs cgo: the cairn
// binary stays CGO_ENABLED=0. `make test` runs it.
package duckdb
