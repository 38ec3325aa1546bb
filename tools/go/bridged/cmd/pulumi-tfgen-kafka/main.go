// Command pulumi-tfgen-kafka writes the Pulumi schema and bridge metadata of the
// bridged kafka provider (schema.json, bridge-metadata.json) for pulumi-resource-kafka.
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"
	prov "local/bridged-providers/kafka"
)

// Set at build time: -ldflags "-X main.version=<version>" (tools/bootstrap.sh).
var version = "0.0.0"

func main() {
	tfgen.Main("kafka", version, prov.Provider(version, []byte("{}")))
}
