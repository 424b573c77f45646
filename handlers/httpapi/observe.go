package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "Time to answer an HTTP request, by method and route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method", "route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight", Help: "HTTP requests being served.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.inFlight)
	}
	return m
}

type requestInfo struct {
	correlationID string
	actor         string
	log           *zap.Logger
}

type infoKey struct{}

// CorrelationID is the request's correlation id (from X-Correlation-ID or new).
func CorrelationID(ctx context.Context) string {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri.correlationID
	}
	return ""
}

func setActor(ctx context.Context, actor string) {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		ri.actor = actor
	}
}

func (s *Server) logger(r *http.Request) *zap.Logger {
	if ri, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return ri.log
	}
	return s.log
}

// validCorrelationID accepts what a caller may safely have echoed into logs and events.
func validCorrelationID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe gives every request a correlation id and a request id, logs it and counts it.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		cid := r.Header.Get(HeaderCorrelationID)
		if !validCorrelationID(cid) {
			cid = uuid.NewString()
		}
		rid := uuid.NewString()
		w.Header().Set(HeaderCorrelationID, cid)
		w.Header().Set(HeaderRequestID, rid)
		ri := &requestInfo{correlationID: cid, log: s.log.With(zap.String("correlation_id", cid))}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
		sw := &statusWriter{ResponseWriter: w}
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		route := r.Pattern // set by the mux on this request
		if route == "" || route == "/" {
			route = "unmatched"
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(r.Method, route, strconv.Itoa(sw.status)).Inc()
		s.metrics.latency.WithLabelValues(r.Method, route).Observe(d.Seconds())
		ri.log.Info("request",
			zap.String("method", r.Method), zap.String("route", route), zap.String("path", r.URL.Path),
			zap.Int("status", sw.status), zap.Duration("latency", d), zap.Int("bytes", sw.bytes),
			zap.String("actor", ri.actor), zap.String("request_id", rid))
	})
}
