package cli

import (
	"net/url"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger writes JSON lines for log collectors, and readable lines to a person at a
// terminal, so that the first lines (where the data is, where the API listens, how to get
// a token) read as sentences.
func NewLogger() (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cfg.Encoding = "console"
		cfg.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05")
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		cfg.EncoderConfig.EncodeCaller = nil
	}
	return cfg.Build()
}

// Redact hides a password in a URL, for the log.
func Redact(u string) string {
	if p, err := url.Parse(u); err == nil && p.User != nil {
		return p.Redacted()
	}
	return u
}
