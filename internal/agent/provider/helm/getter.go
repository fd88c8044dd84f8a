package helm

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// restGetter is the genericclioptions.RESTClientGetter Helm's action
// configuration wants, made from a *rest.Config rather than kubeconfig
// files and flags: distro providers hand in a config, and nothing on the
// host (KUBECONFIG, ~/.kube) may redirect the agent to another cluster.
type restGetter struct {
	cfg       *rest.Config
	namespace string
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
}

var _ genericclioptions.RESTClientGetter = (*restGetter)(nil)

// newRESTGetter builds the discovery client once, so that every Helm client
// made from the getter shares one discovery cache for the action.
func newRESTGetter(cfg *rest.Config, namespace string) (*restGetter, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	return &restGetter{
		cfg:       cfg,
		namespace: namespace,
		discovery: cached,
		mapper:    restmapper.NewShortcutExpander(mapper, cached, nil),
	}, nil
}

func (g *restGetter) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(g.cfg), nil }

func (g *restGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return g.discovery, nil
}

func (g *restGetter) ToRESTMapper() (meta.RESTMapper, error) { return g.mapper, nil }

func (g *restGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig { return staticClientConfig{g} }

// staticClientConfig answers what Helm's kube client asks of a kubeconfig
// loader: above all the namespace, which is where objects without one go.
type staticClientConfig struct{ g *restGetter }

func (c staticClientConfig) RawConfig() (clientcmdapi.Config, error) {
	return *clientcmdapi.NewConfig(), nil
}

func (c staticClientConfig) ClientConfig() (*rest.Config, error) { return c.g.ToRESTConfig() }

func (c staticClientConfig) Namespace() (string, bool, error) { return c.g.namespace, true, nil }

func (c staticClientConfig) ConfigAccess() clientcmd.ConfigAccess {
	// Nothing Helm's actions call writes a kubeconfig; an empty rule set
	// keeps a stray call from reading the host's.
	return &clientcmd.ClientConfigLoadingRules{}
}
