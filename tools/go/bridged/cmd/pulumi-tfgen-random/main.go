// Command pulumi-tfgen-random writes the Pulumi schema and bridge metadata of the
// bridged random provider (schema.json, bridge-metadata.json) for pulumi-resource-random.
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"
	prov "local/bridged-providers/random"
)

// Set at build time: -ldflags "-X main.version=<version>" (tools/bootstrap.sh).
var version = "0.0.0"

func main() {
	tfgen.Main("random", prov.Provider(version, []byte("{}")))
}
