package app

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"
)

// startDebug serves net/http/pprof on Config.DebugAddr, a loopback address (Validate
// refuses others: profiles show the process's internals and cost CPU to take). Closed with
// the store and the rest at Shutdown.
func (a *App) startDebug() error {
	if a.Config.DebugAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.Config.DebugAddr)
	if err != nil {
		return fmt.Errorf("--debug-addr (ORDERD_DEBUG_ADDR) %s: %w", a.Config.DebugAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(a.Log.Named("debug"))}
	go func() { _ = srv.Serve(ln) }()
	a.closers = append(a.closers, srv.Close)
	a.debugAddr = ln.Addr().String()
	a.Log.Info("profiling on loopback", zap.String("pprof", "http://"+a.debugAddr+"/debug/pprof/"))
	return nil
}
