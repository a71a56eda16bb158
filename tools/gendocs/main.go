// Command gendocs regenerates what is derived from the code: field
// descriptions for the JSON schema (from doc comments in api/), the resource
// reference and the OpenAPI document under docs/reference. `make generate`
// runs it in two steps because the second uses what the first compiled in:
//
//	go run ./tools/gendocs descriptions
//	go run ./tools/gendocs docs
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs descriptions|docs  (run from the repository root)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "descriptions":
		var docs map[string]string
		docs, err = fieldDocs("api", "github.com/atoll-mesh/atoll/api")
		if err == nil {
			err = writeDescriptions("api/schema/zz_generated.descriptions.go", docs)
		}
	case "docs":
		err = writeReference("docs/reference")
	default:
		err = fmt.Errorf("unknown step %q: use descriptions or docs", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
