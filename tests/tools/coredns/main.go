// Command coredns is CoreDNS with only the plugins that the end-to-end tests' data plane
// uses: the workload cluster's DNS (kubernetes) and what it takes to run and watch it.
//
// CoreDNS's own main links in every plugin it ships, with their cloud SDKs; importing only
// these keeps the build small and cuts the cold build time several times.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives are the plugins above, in the order of CoreDNS's own plugin.cfg, which is the
// order in which a query passes through them.
var directives = []string{
	"bind",
	"ready",
	"health",
	"errors",
	"log",
	"kubernetes",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
