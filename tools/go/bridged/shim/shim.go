// Package shim exposes terraform-provider-random's internal provider; its
// import path sits under that module so Go's internal-package rule allows it.
package shim

import (
	tfpf "github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/terraform-providers/terraform-provider-random/internal/provider"
)

func NewProvider() tfpf.Provider { return provider.New() }
