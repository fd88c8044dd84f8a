package agent

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/engine"
	"github.com/outpost-edge/outpost/internal/agent/hostid"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
)

// DefaultStateDir is the state directory on the host (under Config.Root).
const DefaultStateDir = "/var/lib/outpost-agent"

// Config says how to run an agent. UserData is required; the rest has
// defaults.
type Config struct {
	Root     hostos.Root
	UserData *userdata.UserData
	// StateDir is a real path (not under Root) for the identity and spec
	// cache; default Root.Path(DefaultStateDir).
	StateDir string
	Version  string // default "dev"
	Logger   *slog.Logger
	// HeartbeatInterval until the hub says otherwise; default 15s.
	HeartbeatInterval time.Duration
	// PollWait is how long the hub may hold a spec long-poll or a pending
	// enrollment; default 30s.
	PollWait time.Duration
	// RetryMin and RetryMax bound the back-off after failed calls; default
	// 1s and 2m.
	RetryMin, RetryMax time.Duration
	// RefusedRetryMin and RefusedRetryMax bound the back-off after the hub
	// refuses enrollment (bad, expired, revoked or used-up token): a person
	// has to act, so there is no point asking often; default 30s and 10m.
	RefusedRetryMin, RefusedRetryMax time.Duration
	// OnSpec is called with every new HostSpec after it is on disk, and at
	// start with the cached one. It runs on the spec loop: a slow hook
	// delays the next poll, never loses a spec.
	OnSpec func(v1.HostSpec)
	// Distros and Layers are the providers the cluster engine installs
	// Kubernetes and applies layers with. Left empty, they are the
	// simulated ones when Simulated is set; otherwise every cluster spec is
	// reported Failed for want of a provider.
	Distros engine.Registry[engine.Distro]
	Layers  engine.Registry[engine.LayerApplier]
	// Simulated makes the host a simulated one (fleet simulator, demo):
	// nothing is installed, see internal/agent/provider/simulated.
	Simulated bool
}

func (c *Config) setDefaults() {
	if c.StateDir == "" {
		c.StateDir = c.Root.Path(DefaultStateDir)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 15 * time.Second
	}
	if c.PollWait <= 0 {
		c.PollWait = 30 * time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(2*time.Minute, c.RetryMin)
	}
	if c.RefusedRetryMin <= 0 {
		c.RefusedRetryMin = 30 * time.Second
	}
	if c.RefusedRetryMax < c.RefusedRetryMin {
		c.RefusedRetryMax = max(10*time.Minute, c.RefusedRetryMin)
	}
}

// Phase is where the agent is in its life with the hub.
type Phase string

const (
	PhaseEnrolling       Phase = "Enrolling"
	PhasePendingApproval Phase = "PendingApproval"
	PhaseEnrolled        Phase = "Enrolled"
)

// Status is a snapshot for the local UI and the site TUI.
type Status struct {
	Phase   Phase  `json:"phase"`
	HostID  string `json:"hostID"`
	Project string `json:"project,omitempty"`
	// LastError is the latest failure talking to the hub, cleared by the
	// next success.
	LastError           string    `json:"lastError,omitempty"`
	LastErrorAt         time.Time `json:"lastErrorAt,omitzero"`
	LastHeartbeat       time.Time `json:"lastHeartbeat,omitzero"`
	SpecRevision        int64     `json:"specRevision"`
	CertificateNotAfter time.Time `json:"certificateNotAfter,omitzero"`
}

// Agent is one edge agent. Make it with New, then Run it.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	hostID string
	hubURL string
	store  store
	key    crypto.Signer

	http      *http.Client
	transport *swapTransport

	engine  *engine.Engine
	reports *reportBox

	mu     sync.Mutex
	tls    tlsSettings
	creds  *creds // nil until enrolled
	gen    int    // bumped whenever creds change
	status Status
}

// New checks the configuration, works out the host ID and loads (or makes)
// the host key and any stored identity. It does not talk to the hub.
func New(cfg Config) (*Agent, error) {
	if cfg.UserData == nil {
		return nil, errors.New("agent config: no user-data")
	}
	if err := cfg.UserData.Validate(); err != nil {
		return nil, fmt.Errorf("user-data: %w", err)
	}
	cfg.setDefaults()
	ud := cfg.UserData
	id, err := hostid.Compute(cfg.Root, ud)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:       cfg,
		log:       cfg.Logger.With("host", id),
		hostID:    id,
		hubURL:    strings.TrimRight(ud.Hub.URL, "/"),
		store:     store{dir: cfg.StateDir},
		transport: &swapTransport{},
	}
	a.http = &http.Client{Transport: a.transport}
	a.status = Status{Phase: PhaseEnrolling, HostID: id}
	if a.key, err = a.store.loadOrCreateKey(); err != nil {
		return nil, err
	}
	bootstrap, err := bootstrapPool(cfg.Root, ud)
	if err != nil {
		return nil, err
	}
	pinned, _, err := a.store.loadCA()
	if err != nil {
		// A damaged CA file is not fatal: enrollment fetches it again.
		a.log.Warn("ignoring stored hub CA", "error", err)
	}
	a.tls = tlsSettings{bootstrap: bootstrap, pinned: pinned, insecure: ud.Hub.InsecureSkipVerify}
	if err := a.newEngine(); err != nil {
		return nil, err
	}
	if c, why := a.store.loadCreds(id, a.key, pinned, time.Now()); c != nil {
		a.setCreds(c)
	} else {
		a.log.Debug("not enrolled yet", "reason", why)
		a.transport.swap(newTransport(a.tls, a.proxyFunc()))
	}
	return a, nil
}

func (a *Agent) proxyFunc() func(*http.Request) (*url.URL, error) {
	return proxyFunc(a.cfg.UserData.Network.Proxy)
}

// HostID is the ID the agent enrolls under.
func (a *Agent) HostID() string { return a.hostID }

// Status returns the current status.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status
}

func (a *Agent) setPhase(p Phase) {
	a.mu.Lock()
	a.status.Phase = p
	a.mu.Unlock()
}

func (a *Agent) setError(err error) {
	a.mu.Lock()
	if err == nil {
		a.status.LastError, a.status.LastErrorAt = "", time.Time{}
	} else {
		a.status.LastError, a.status.LastErrorAt = err.Error(), time.Now()
	}
	a.mu.Unlock()
}

// setCreds makes c the identity for every later call (nil: none), pinning
// the CA it was issued with.
func (a *Agent) setCreds(c *creds) {
	a.mu.Lock()
	a.creds = c
	a.gen++
	ts := a.tls
	if c != nil {
		ts.client = &c.tls
		a.status.Phase = PhaseEnrolled
		a.status.Project = c.project
		a.status.CertificateNotAfter = c.cert.NotAfter
	} else {
		ts.client = nil
		a.status.Phase = PhaseEnrolling
		a.status.CertificateNotAfter = time.Time{}
	}
	a.mu.Unlock()
	a.transport.swap(newTransport(ts, a.proxyFunc()))
}

// pin makes pool the only trusted hub CA from now on.
func (a *Agent) pin(pool *x509.CertPool) {
	a.mu.Lock()
	a.tls.pinned = pool
	a.mu.Unlock()
}

// current returns the identity and its generation, so a caller that gets an
// auth failure can tell whether the identity changed in between (a renewal
// racing a long-poll) or really stopped working.
func (a *Agent) current() (*creds, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.creds, a.gen
}

// errReenroll ends a session: the hub no longer accepts the certificate.
var errReenroll = errors.New("hub no longer accepts the host certificate")

// Run enrolls if needed and then keeps the host in touch with the hub until
// ctx ends, when it returns nil. It returns an error only for local
// failures it cannot get past, such as a state directory it cannot write.
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("agent starting", "version", a.cfg.Version, "hub", a.hubURL, "stateDir", a.cfg.StateDir, "simulated", a.cfg.Simulated)
	stopEngine := a.startEngine(ctx)
	defer stopEngine()
	if c, _ := a.current(); c != nil {
		a.log.Info("already enrolled", "project", c.project, "certificateNotAfter", c.cert.NotAfter.UTC())
	}
	since := a.loadCachedSpec()
	reauth := newBackoff(a.cfg.RetryMin, a.cfg.RetryMax)
	for {
		if c, _ := a.current(); c == nil {
			if err := a.enroll(ctx); err != nil {
				if ctx.Err() != nil {
					break
				}
				return err
			}
		}
		err := a.session(ctx, &since, reauth)
		if ctx.Err() != nil {
			break
		}
		if !errors.Is(err, errReenroll) {
			return err
		}
		a.log.Warn("hub no longer accepts the host certificate; enrolling again", "error", err)
		a.setError(err)
		if err := a.store.dropCert(); err != nil {
			return err
		}
		a.setCreds(nil)
		if !sleep(ctx, reauth.Next()) {
			break
		}
	}
	a.log.Info("agent stopped")
	return nil
}

// session runs the loops of an enrolled agent until one of them finds the
// certificate rejected or ctx ends.
func (a *Agent) session(ctx context.Context, since *int64, reauth *backoff) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context) error{
		func(ctx context.Context) error { return a.heartbeatLoop(ctx, reauth) },
		func(ctx context.Context) error { return a.specLoop(ctx, since) },
		a.renewLoop,
		a.statusLoop,
	} {
		wg.Go(func() {
			if err := loop(ctx); err != nil && ctx.Err() == nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
