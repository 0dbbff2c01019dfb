// Package sources holds the compliance sources behind policy.Source:
//
//   - File: a CSV file (user,device_id,state[,expires]) reloaded when it
//     changes.
//
// Sources may import policy and eas, the standard library and x/ packages;
// they never import proxy, proxy/config, certs or fasthttp.
package sources
