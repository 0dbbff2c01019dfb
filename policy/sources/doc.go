// Package sources holds the compliance sources behind policy.Source:
//
//   - File: a CSV file (user,device_id,state[,expires]) reloaded when it
//     changes.
//   - HTTP: a JSON webhook asked per device.
//   - Graph: Microsoft Intune's managed devices pulled through Microsoft
//     Graph into a local table.
//
// The file and graph sources replace their whole table on a reload; their
// Guard holds back a reload that is empty, unparsable or drops more than
// max_drop of the entries, until an administrator accepts it (guard.go).
// The accept marker and status file helpers are shared with
// `easgate compliance`.
//
// Sources may import policy and eas, the standard library and x/ packages;
// they never import proxy, proxy/config, certs, fasthttp or Prometheus
// (metrics reach the gateway through Guard.OnEvent).
package sources
