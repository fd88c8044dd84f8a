package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/provider"
	"github.com/outpost-edge/outpost/internal/agent/provider/fetch"
	"github.com/outpost-edge/outpost/internal/agent/provider/helm"
	"github.com/outpost-edge/outpost/internal/agent/provider/manifests"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// kubeconfigs are where each distro leaves its admin kubeconfig; the first
// one present is the cluster this host is part of.
var kubeconfigs = []string{
	"/etc/rancher/k3s/k3s.yaml",
	"/etc/rancher/rke2/rke2.yaml",
	"/etc/kubernetes/admin.conf",
}

// realProviders builds the k3s/rke2/kubeadm providers and the OS, manifest
// and Helm appliers. Artifacts and charts come through the hub's cache over
// the agent's mTLS connection; what the cache cannot serve comes straight
// from upstream through the site's proxy and CAs.
func (a *Agent) realProviders() (engine.Registry[engine.Distro], engine.Registry[engine.LayerApplier], error) {
	upstream, err := a.upstreamClient()
	if err != nil {
		return engine.Registry[engine.Distro]{}, engine.Registry[engine.LayerApplier]{}, err
	}
	f := &fetch.Fetcher{Root: a.cfg.Root, Client: upstream, CacheClient: a.http, CacheURL: a.hubURL + v1.AgentPathArtifacts}
	distros, layers := provider.Build(provider.Config{Root: a.cfg.Root, Fetcher: f, Log: a.log, ProxyEnv: proxyEnv(a.cfg.UserData.Network.Proxy)})

	restConfig := func(ctx context.Context) (*rest.Config, error) {
		for _, p := range kubeconfigs {
			if _, err := a.cfg.Root.Stat(p); err == nil {
				return manifests.KubeconfigFile(a.cfg.Root.Path(p))(ctx)
			}
		}
		return nil, fmt.Errorf("no Kubernetes admin kubeconfig on this host yet (looked for %s)", strings.Join(kubeconfigs, ", "))
	}
	ma := manifests.New(restConfig)
	charts := &helm.HTTPFetcher{Client: a.http, Dir: filepath.Join(a.cfg.StateDir, "charts"), Rewrite: helm.ViaHub(a.hubURL)}
	ha, err := helm.New(helm.Options{
		RESTConfig: restConfig,
		Fetch:      helm.Chain(helm.ContentFetcher(filepath.Join(a.cfg.StateDir, "content")), charts.Fetch),
		Manifests:  ma,
		Logger:     a.log,
	})
	if err != nil {
		return engine.Registry[engine.Distro]{}, engine.Registry[engine.LayerApplier]{}, err
	}
	layers[v1.PackManifest] = ma
	layers[v1.PackHelm] = ha
	return distros, engine.Registry[engine.LayerApplier]{ByName: layers}, nil
}

// upstreamClient reaches artifact hosts directly: system roots plus the
// site's extra CAs, through the site's proxy.
func (a *Agent) upstreamClient() (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for i, c := range a.cfg.UserData.CACerts {
		if err := addPEM(pool, c); err != nil {
			return nil, fmt.Errorf("caCerts[%d]: %w", i, err)
		}
	}
	return &http.Client{Timeout: 30 * time.Minute, Transport: &http.Transport{
		Proxy:               a.proxyFunc(),
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 30 * time.Second,
	}}, nil
}

// proxyEnv is the site's proxy as environment lines for the distros'
// container runtimes, which pull images themselves.
func proxyEnv(p userdata.Proxy) []string {
	var env []string
	for _, kv := range [][2]string{{"HTTP_PROXY", p.HTTPProxy}, {"HTTPS_PROXY", p.HTTPSProxy}, {"NO_PROXY", p.NoProxy}} {
		if kv[1] != "" {
			env = append(env, kv[0]+"="+kv[1])
		}
	}
	return env
}
