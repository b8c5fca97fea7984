package app

import "github.com/camfeed/camfeed/internal/route"

// Routes lists every HTTP route with its access class, in mounting order
// (for checks such as the docs test in cmd/camfeed).
func (a *App) Routes() []route.Route { return a.mux.Routes() }
