package app

import (
	"net/http/pprof"

	"github.com/camfeed/camfeed/internal/route"
)

// mountDebug serves Go's profiler (net/http/pprof) to admins, so a Pi in
// the field can be profiled under its real load:
//
//	go tool pprof -http : 'http://admin:PASS@pi:8000/debug/pprof/profile?seconds=30'
//
// It is mounted only with debug: true. The handlers are mounted here
// rather than by importing the package for its side effect, which would
// put them on http.DefaultServeMux, outside the route guard.
func mountDebug(mux *route.Mux) {
	mux.HandleFunc("GET /debug/pprof/", route.Admin, pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", route.Admin, pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", route.Admin, pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", route.Admin, pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", route.Admin, pprof.Trace)
}
