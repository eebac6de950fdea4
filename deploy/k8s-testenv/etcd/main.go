// Command etcd runs etcd's own server entry point (go.etcd.io/etcd/server/v3/etcdmain) for
// Glia's Kubernetes tests; deploy/k8s-testenv/build.sh builds it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
