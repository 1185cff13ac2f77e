// Command kubeloop-controlplane is one multi-call binary holding the three upstream
// components the local control plane needs. The first argument picks the component;
// the rest are passed to upstream's own entry point unchanged, so every flag works
// exactly as in the released binaries.
//
//	kubeloop-controlplane etcd --data-dir ...
//	kubeloop-controlplane kube-apiserver --etcd-servers ...
//	kubeloop-controlplane kube-controller-manager --kubeconfig ...
//	kubeloop-controlplane version
//
// Like busybox, it also answers to the component's name: a symlink named `etcd` or
// `kube-apiserver` pointing at it runs that component, so a directory of such links is a
// KUBEBUILDER_ASSETS-style directory of prebuilt binaries.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata" // CronJob time zones, as upstream's mains do

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/component-base/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	component := filepath.Base(os.Args[0])
	if !isComponent(component) {
		if len(os.Args) < 2 {
			usage()
			os.Exit(2)
		}
		component = os.Args[1]
		// Each upstream command reads os.Args itself; make it look like it was run directly.
		os.Args = append([]string{component}, os.Args[2:]...)
	}
	switch component {
	case "etcd":
		etcdmain.Main(os.Args)
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "version":
		fmt.Println(version.Get().GitVersion)
	default:
		usage()
		os.Exit(2)
	}
}

func isComponent(name string) bool {
	return name == "etcd" || name == "kube-apiserver" || name == "kube-controller-manager"
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kubeloop-controlplane etcd|kube-apiserver|kube-controller-manager|version [flags...]")
}
