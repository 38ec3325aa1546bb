// Command pulumi-resource-kafka is the bridged kafka provider plugin. It embeds the
// schema.json and bridge-metadata.json that pulumi-tfgen-kafka writes into this
// directory at build time (tools/bootstrap.sh); they are not in the repository.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	prov "local/bridged-providers/kafka"
)

// Set at build time: -ldflags "-X main.version=<version>" (tools/bootstrap.sh).
var version = "0.0.0"

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var metadata []byte

func main() { tfbridge.Main("kafka", version, prov.Provider(version, metadata), schema) }
