// Package codegen is a stand-in: tfgen links this program generator only to
// translate documentation examples, which these local builds do not need.
package codegen

import (
	"errors"

	"github.com/hashicorp/hcl/v2"
	"github.com/pulumi/pulumi/pkg/v3/codegen/pcl"
)

func GenerateProgram(*pcl.Program) (map[string][]byte, hcl.Diagnostics, error) {
	return nil, nil, errors.New("example translation for this language is not built in")
}
