// Command pulumi-resource-random is the bridged random provider plugin. It embeds the
// schema.json and bridge-metadata.json that pulumi-tfgen-random writes into this
// directory at build time (tools/bootstrap.sh); they are not in the repository.
package main

import (
	"context"
	_ "embed"

	pf "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	prov "local/bridged-providers/random"
)

// Set at build time: -ldflags "-X main.version=<version>" (tools/bootstrap.sh).
var version = "0.0.0"

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var metadata []byte

func main() {
	pf.Main(context.Background(), "random", prov.Provider(version, metadata), pf.ProviderMetadata{PackageSchema: schema})
}
