// Package projections folds the event log into the read models finance and the frontends
// query (quota, expiry, pending-payment), checkpointed on disk and rebuildable from zero.
package projections
