package kafka

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
)

func singleModule(prefix string, token func(name string) string) tfbridge.Strategy {
	return tokens.SingleModule(prefix, "index", func(_, name string) (string, error) { return token(name), nil })
}
