// Package dashboard serves netsight's built-in web UI at "/": a health
// overview and charts over the embedded store's query API, plus a flows table
// from /api/v1/flows. All assets (HTML, CSS, JS and
// the vendored uPlot chart library) are embedded with go:embed, so the
// dashboard works offline and needs no CDN.
//
// Panels are declared in assets/panels.js; see docs/dashboard.md.
package dashboard
