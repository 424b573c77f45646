// Package audit is what auditors use to read and prove the event log: a stream's timeline,
// the hash-chain and log-digest check, export and import of the whole log, and read-only
// HTTP handlers. It only reads the store, except Import, which writes to an empty one.
package audit
