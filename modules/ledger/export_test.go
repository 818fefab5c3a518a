package ledger

// SweepSQL is the sweep's statement, for the plan test in package ledger_test
// (which cannot live in package ledger: testenv imports the app, which
// imports this package).
const SweepSQL = sweepSQL

// SweepBatch is how many keys one sweep statement deletes.
const SweepBatch = sweepBatch
