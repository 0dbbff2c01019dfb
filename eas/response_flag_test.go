package eas

import "flag"

// The -update flag rewrites testdata/bodies/*.wbxml from their .xml sources
// and the *.golden files of the response builders. Other test files of this
// package may define a flag of the same name; this file's name sorts after
// theirs, so it reuses theirs instead of registering a duplicate (which
// would panic).
var bodyUpdateFlag *flag.Flag

func init() {
	if bodyUpdateFlag = flag.Lookup("update"); bodyUpdateFlag == nil {
		flag.Bool("update", false, "rewrite testdata golden files")
		bodyUpdateFlag = flag.Lookup("update")
	}
}

// bodyUpdating reports whether -update was given.
func bodyUpdating() bool { return bodyUpdateFlag.Value.String() == "true" }
