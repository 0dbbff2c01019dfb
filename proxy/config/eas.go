package config

import (
	"sync"

	"github.com/easgate/easgate/eas"
)

// The rule vocabulary (client slugs, OS families, versions) belongs to
// package eas, so the config accepts exactly what the classifier produces.

func validClient(s string) bool    { _, ok := eas.ParseFamily(s); return ok }
func validOSFamily(s string) bool  { _, ok := eas.ParseOSFamily(s); return ok }
func validOSVersion(s string) bool { _, ok := eas.ParseOSVersion(s); return ok }

// clientSlugs lists every client family slug, for "did you mean" hints.
var clientSlugs = sync.OnceValue(func() []string {
	var out []string
	for f := eas.Family(0); f < 255; f++ {
		s := f.Slug()
		if g, ok := eas.ParseFamily(s); ok && g == f {
			out = append(out, s)
		}
	}
	return out
})

// osFamilyNames lists every OS family name, for "did you mean" hints.
var osFamilyNames = sync.OnceValue(func() []string {
	var out []string
	for o := eas.OSFamily(0); o < 255; o++ {
		s := o.String()
		if p, ok := eas.ParseOSFamily(s); ok && p == o {
			out = append(out, s)
		}
	}
	return out
})
