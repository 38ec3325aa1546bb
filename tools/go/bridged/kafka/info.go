// Package kafka maps terraform-provider-kafka to the names used by @pulumi/kafka.
package kafka

import (
	"fmt"
	"strings"
	"unicode"

	tfkafka "github.com/Mongey/terraform-provider-kafka/kafka"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
)

func withEnvDefault(env string, value any) *tfbridge.SchemaInfo {
	return &tfbridge.SchemaInfo{Default: &tfbridge.DefaultInfo{EnvVars: []string{env}, Value: value}}
}

// Provider returns the bridge configuration; metadata is bridge-metadata.json.
func Provider(version string, metadata []byte) tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:            shimv2.NewProvider(tfkafka.Provider()),
		Name:         "kafka",
		Version:      version,
		GitHubOrg:    "Mongey",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Config: map[string]*tfbridge.SchemaInfo{
			"sasl_mechanism":  withEnvDefault("KAFKA_SASL_MECHANISM", "plain"),
			"skip_tls_verify": withEnvDefault("KAFKA_SKIP_VERIFY", false),
			"tls_enabled":     withEnvDefault("KAFKA_ENABLE_TLS", true),
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			// "resourceName" would clash with the SDK's own constructor argument.
			"kafka_acl": {Fields: map[string]*tfbridge.SchemaInfo{
				"resource_name": {Name: "aclResourceName"},
				"resource_type": {Name: "aclResourceType"},
			}},
		},
	}
	// Resources: kafka:index/topic:Topic; functions: kafka:index:getTopic.
	info.MustComputeTokens(tokensFor("kafka_"))
	info.SetAutonaming(255, "-")
	return info
}

func tokensFor(prefix string) tfbridge.Strategy {
	return singleModule(prefix, func(name string) string {
		if strings.HasPrefix(name, "get") {
			return "kafka:index:" + name
		}
		return fmt.Sprintf("kafka:index/%c%s:%s", unicode.ToLower(rune(name[0])), name[1:], name)
	})
}
