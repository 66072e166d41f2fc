package status

import (
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/onwardsgo/pool"
)

// page is the template of Handler's page.
var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"limit": func(n int, ok bool) string {
		if !ok {
			return "∞"
		}
		return strconv.Itoa(n)
	},
	"until": func(t, now time.Time) string {
		if t.IsZero() || !t.After(now) {
			return ""
		}
		return "for " + t.Sub(now).Round(time.Second).String()
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>pool status</title>
<style>
body{font:14px system-ui,sans-serif;margin:24px;color:#1d2433;background:#f7f8fa}
h1{font-size:20px;margin:0 0 4px} .when{color:#667;margin-bottom:20px}
section{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:12px 16px;margin-bottom:16px}
h2{font-size:16px;margin:0 0 8px} .meta{color:#556;font-size:13px;margin-bottom:8px}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:6px 8px;border-top:1px solid #eef0f4;white-space:nowrap}
th{font-weight:600;color:#556;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.state{font-weight:600;border-radius:4px;padding:2px 6px;font-size:12px}
.healthy{background:#e3f6e8;color:#17692e} .ejected{background:#fde2e1;color:#a3231c}
.half_open{background:#fff1d6;color:#8a5a00} .cooling{background:#e4ecfd;color:#1f4bb0}
.bar{background:#eef0f4;border-radius:3px;height:8px;width:120px;display:inline-block;vertical-align:middle;margin-right:6px}
.bar i{display:block;height:8px;border-radius:3px;background:#4a7be0}
</style></head><body>
<h1>pool status</h1><div class="when">{{.Time.Format "2006-01-02 15:04:05 MST"}} · refreshes every 2 s · {{.UnknownModel}} requests for unknown models</div>
{{$now := .Time}}{{range .Pools}}
<section id="alias-{{.Alias}}"><h2>{{.Alias}}</h2>
<div class="meta">{{.Strategy}} · in flight {{.InFlight}} / {{limit .Limit .Limited}} · retries {{.Retries}} · backoff {{.Backoff}}
{{range $code, $n := .Refused}}{{if $n}} · {{$code}} {{$n}}{{end}}{{end}}</div>
<table><tr><th>#</th><th>provider</th><th>model</th><th>weight</th><th>in flight</th><th>state</th><th>ok</th><th>failed</th><th>timeouts</th><th>ejections</th></tr>
{{range .Providers}}<tr><td>{{.Index}}</td><td>{{.URL}}</td><td>{{.UpstreamModel}}</td><td>{{.Weight}}</td>
<td><span class="bar"><i style="width:{{.LoadPercent}}%"></i></span>{{.InFlight}} / {{limit .Limit .Limited}}</td>
<td><span class="state {{.State}}">{{.State}}</span> {{until .EjectedUntil $now}}{{until .CooldownUntil $now}}</td>
<td>{{index .Attempts "success"}}</td><td>{{index .Attempts "failure"}}</td><td>{{index .Attempts "timeout"}}</td><td>{{.Ejections}}</td></tr>
{{end}}</table></section>{{end}}
</body></html>
`))

// providerView adds to a provider snapshot what the page draws.
type providerView struct {
	pool.ProviderSnapshot
}

// LoadPercent is the share of its limit in flight, for the bar; a
// provider without a limit shows its load against 10.
func (p providerView) LoadPercent() int {
	limit := p.Limit
	if !p.Limited {
		limit = 10
	}
	if limit <= 0 {
		return 100
	}
	return min(100, 100*p.InFlight/limit)
}

// Handler serves an HTML page of reg's state: every alias and provider
// with its load, limit, outlier state and outcome counts, from one
// [pool.Registry.Snapshot], refreshing itself every two seconds. It shows
// no key: labels and URLs come from the snapshot, which has none. Mount it
// where only operators reach it, as GET /status, say.
func Handler(reg *pool.Registry) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		snap := reg.Snapshot()
		type poolView struct {
			pool.PoolSnapshot
			Providers []providerView
		}
		view := struct {
			pool.RegistrySnapshot
			Pools []poolView
		}{RegistrySnapshot: snap}
		for _, p := range snap.Pools {
			pv := poolView{PoolSnapshot: p}
			for _, pr := range p.Providers {
				pv.Providers = append(pv.Providers, providerView{pr})
			}
			view.Pools = append(view.Pools, pv)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		page.Execute(w, view)
	})
}
