package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/einvoice/spaceorders/handlers/audit"
	"github.com/einvoice/spaceorders/handlers/checkpoint"
)

// ErrDamagedLog: the start check found the log damaged and --allow-damaged-log is not set.
var ErrDamagedLog = errors.New("the event log is damaged")

// checkLog is the start check: every position present (on a store whose positions are
// dense), every stream's versions contiguous, and the last checkpoint this data folder
// wrote still in the log. It reads commit headers only where the store can (JetStream), so
// it stays quick on a large log. Damage stops the start unless --allow-damaged-log.
func (a *App) checkLog(ctx context.Context) error {
	start := time.Now()
	streams, gapErr := audit.ScanGaps(ctx, a.Store)
	var damage *audit.Damage
	if gapErr != nil && !errors.As(gapErr, &damage) {
		return fmt.Errorf("start check of the event log: %w", gapErr)
	}
	tailErr := checkpoint.CheckTail(ctx, a.Store, a.Config.DataDir)
	var lost *checkpoint.TailLost
	if tailErr != nil && !errors.As(tailErr, &lost) {
		return fmt.Errorf("start check of the event log: %w", tailErr)
	}
	took := time.Since(start)
	if damage == nil && lost == nil {
		a.Log.Info("event log checked: no position or stream version missing",
			zap.Int("streams", streams), zap.Duration("took", took))
		return nil
	}
	var found []error
	if damage != nil {
		found = append(found, damage)
		for _, g := range damage.Gaps {
			a.Log.Error("event log damaged", zap.String("kind", string(g.Kind)), zap.Uint64("from_position", g.FromPosition),
				zap.Uint64("to_position", g.ToPosition), zap.String("stream", g.Stream), zap.Strings("streams", g.Streams),
				zap.String("gap", g.String()))
		}
	}
	if lost != nil {
		found = append(found, lost)
		a.Log.Error("event log damaged", zap.String("kind", "tail-lost"), zap.Error(lost))
	}
	err := fmt.Errorf("%w: %w", ErrDamagedLog, errors.Join(found...))
	if a.Config.AllowDamagedLog {
		a.Log.Error("starting on a damaged event log because --allow-damaged-log (ORDERD_ALLOW_DAMAGED_LOG) is set", zap.Error(err))
		return nil
	}
	return fmt.Errorf("%w; orderd refuses to start on it: run orderctl verify-chain for the full report, restore from a backup, "+
		"or start with --allow-damaged-log (ORDERD_ALLOW_DAMAGED_LOG) to go on", err)
}

// goCheckpoints runs the signer of the log head with the data folder's checkpoint key.
func (a *App) goCheckpoints() error {
	key, created, err := checkpoint.LoadOrCreateKey(a.Config.DataDir)
	if err != nil {
		return fmt.Errorf("--data (ORDERD_DATA): %w", err)
	}
	if created {
		a.Log.Info("made a checkpoint signing key: copy it with the data folder for a restore",
			zap.String("key", checkpoint.KeyFile(a.Config.DataDir)), zap.String("public", checkpoint.PublicKeyFile(a.Config.DataDir)))
	}
	s := checkpoint.New(a.Store, key, a.Config.DataDir, checkpoint.Options{Every: a.Config.CheckpointEvery,
		Interval: a.Config.CheckpointInterval, Logger: a.Log.Named("checkpoint"), Clock: a.Config.Clock})
	a.Go("checkpoints", s.Run)
	return nil
}
