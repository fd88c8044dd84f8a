package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/catalog"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// clusterQueue holds the clusters to reconcile. It is fed by the change log
// (a cluster, a node report, a host or a profile changed), never by a timer;
// the one exception is a teardown with a force-delete deadline, which
// re-queues itself for when the deadline passes.
type clusterQueue struct {
	mu      sync.Mutex
	pending map[string]bool // project/name
	kick    chan struct{}
	// byHost and byProfile map what the controller saw last to the clusters
	// that care, so a node report or a train move wakes the right cluster.
	byHost    map[string]string
	byProfile map[string]map[string]bool
}

func newClusterQueue() *clusterQueue {
	return &clusterQueue{pending: map[string]bool{}, kick: make(chan struct{}, 1), byHost: map[string]string{}, byProfile: map[string]map[string]bool{}}
}

func (q *clusterQueue) add(key string) {
	q.mu.Lock()
	q.pending[key] = true
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *clusterQueue) take() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]string, 0, len(q.pending))
	for k := range q.pending {
		out = append(out, k)
	}
	q.pending = map[string]bool{}
	slices.Sort(out)
	return out
}

func (q *clusterQueue) remember(key string, hosts []string, profiles []v1.ClusterProfileRef, project string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, h := range hosts {
		q.byHost[h] = key
	}
	for _, p := range profiles {
		pk := project + "/" + p.Name
		if q.byProfile[pk] == nil {
			q.byProfile[pk] = map[string]bool{}
		}
		q.byProfile[pk][key] = true
	}
}

// apply is the watch hook.
func (q *clusterQueue) apply(c store.Change) {
	switch c.Object.Kind {
	case v1.KindCluster:
		q.add(c.Object.Project + "/" + c.Object.Name)
	case v1.KindNodeReport, v1.KindEdgeHost:
		q.mu.Lock()
		key, ok := q.byHost[c.Object.Name]
		q.mu.Unlock()
		if ok {
			q.add(key)
		}
	case v1.KindClusterProfile:
		name, _, _ := strings.Cut(c.Object.Name, "@")
		q.mu.Lock()
		keys := q.byProfile[c.Object.Project+"/"+name]
		var list []string
		for k := range keys {
			list = append(list, k)
		}
		q.mu.Unlock()
		for _, k := range list {
			q.add(k)
		}
	}
}

func (s *Service) clusterLoop(ctx context.Context) {
	// At start, every cluster is looked at once: the hub may have died in
	// the middle of anything.
	if all, _, err := s.store.List(ctx, store.ListOptions{Kind: v1.KindCluster}); err == nil {
		for _, o := range all {
			s.clusters.add(o.Project + "/" + o.Name)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.clusters.kick:
		}
		for _, key := range s.clusters.take() {
			project, name, _ := strings.Cut(key, "/")
			err := s.reconcileCluster(ctx, project, name)
			switch {
			case err == nil:
			case errors.Is(err, errs.ErrConflict):
				s.clusters.add(key) // someone wrote first: look again
			case ctx.Err() != nil:
				return
			default:
				s.log.Warn("reconcile cluster", "project", project, "cluster", name, "err", err)
			}
		}
	}
}

// nodeView is what the controller knows of one host in one pass.
type nodeView struct {
	id      string
	pool    *v1.NodePool
	role    string
	spec    *v1.HostSpec // stored HostSpec
	report  *v1.NodeReportSpec
	host    hostEntry
	desired *v1.HostCluster // nil: not part of the cluster any more
	applied bool            // the report is about the current spec
	hold    bool            // the pool's update strategy makes it wait
}

func hostSpecHash(id, project string, hc *v1.HostCluster) string {
	b, _ := json.Marshal(struct {
		Host, Project string
		Cluster       *v1.HostCluster
	}{id, project, hc})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// reconcileCluster moves one cluster one step towards its spec. It is
// level-triggered: it reads everything it needs, decides from that alone,
// and writes with the revisions it read, so running it twice, or after a
// crash at any point, does no harm.
func (s *Service) reconcileCluster(ctx context.Context, project, name string) error {
	c, err := objects.Get[storedCluster](ctx, s.store, v1.KindCluster, project, name)
	if errors.Is(err, errs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if c.Status.State == v1.ClusterDeleted {
		return nil
	}
	key := project + "/" + name
	before, _ := json.Marshal(c)
	var events []store.Op
	event := func(typ, reason, msg string) {
		events = append(events, objects.EventOp(project, v1.KindCluster, name, typ, reason, msg))
	}
	deleting := c.Status.State == v1.ClusterDeleting

	// What the cluster should run.
	var rendered *renderedCluster
	if !deleting {
		rendered, err = s.renderCluster(ctx, c)
		if err != nil {
			if c.Status.Reason != "render: "+err.Error() {
				event(objects.EventWarning, "RenderFailed", err.Error())
			}
			c.Status.State, c.Status.Reason = v1.ClusterFailed, "render: "+err.Error()
			return s.saveCluster(ctx, c, before, events, nil)
		}
		if !pinsValid(c) {
			c.Internal.Pins, c.Internal.PinnedProfiles, c.Internal.PinnedGeneration = rendered.Pins, slices.Clone(c.Spec.Profiles), c.Spec.ResolveGeneration
		}
		c.Status.SpecHash, c.Status.Layers = rendered.Hash, rendered.Status
		c.Status.UpdatesAvailable = s.updatesAvailable(ctx, c)
	}
	joinToken, err := s.secrets.Open(c.Internal.JoinToken, clusterSecretContext(project, name))
	if err != nil {
		return err
	}

	// Who is in it. Members hold InUse for this cluster; desired hosts that
	// are not members yet are claimed now.
	desired := map[string]*v1.NodePool{}
	if !deleting {
		for i := range c.Spec.Pools {
			for _, h := range c.Spec.Pools[i].Hosts {
				desired[h] = &c.Spec.Pools[i]
			}
		}
		if c.Internal.InitHost == "" {
			for _, p := range c.Spec.Pools {
				if p.ControlPlane && len(p.Hosts) > 0 {
					c.Internal.InitHost = p.Hosts[0]
				}
			}
		}
	}
	var claim []string
	for _, id := range allHosts(&c.Spec) {
		if desired[id] != nil && !slices.Contains(c.Internal.Members, id) {
			claim = append(claim, id)
		}
	}
	if len(claim) > 0 {
		claimed, err := s.claimHosts(ctx, c, claim)
		if err != nil {
			c.Status.State, c.Status.Reason = v1.ClusterFailed, err.Error()
			event(objects.EventWarning, "ClaimFailed", err.Error())
			return s.saveCluster(ctx, c, before, events, nil)
		}
		c.Internal.Members = append(c.Internal.Members, claimed...)
	}
	if c.Status.State == v1.ClusterPending {
		c.Status.State, c.Status.Reason = v1.ClusterProvisioning, ""
		event(objects.EventNormal, "Provisioning", fmt.Sprintf("provisioning on %d hosts", len(c.Internal.Members)))
	}

	// Read every member's spec, report and presence.
	views := map[string]*nodeView{}
	ids := slices.Clone(c.Internal.Members)
	for _, id := range ids {
		v := &nodeView{id: id, pool: desired[id]}
		v.host, _ = s.hosts.get(id)
		if spec, err := objects.GetByKey[v1.HostSpec](ctx, s.store, v1.KindHostSpec, id); err == nil {
			v.spec = spec
		} else if !errors.Is(err, errs.ErrNotFound) {
			return err
		}
		if rep, err := objects.GetByKey[v1.NodeReport](ctx, s.store, v1.KindNodeReport, id); err == nil {
			v.report = &rep.Spec
		} else if !errors.Is(err, errs.ErrNotFound) {
			return err
		}
		if v.spec != nil && v.report != nil && v.report.SpecHash == v.spec.Hash {
			v.applied = true
		}
		views[id] = v
	}
	s.clusters.remember(key, ids, c.Spec.Profiles, project)

	initView := views[c.Internal.InitHost]
	initUp := initView != nil && initView.report != nil && initView.report.ControlPlaneUp
	endpoint := c.Spec.VIP
	if endpoint == "" && initView != nil && initView.report != nil {
		endpoint = initView.report.Address
	}
	c.Status.Endpoint = endpoint

	// The desired HostCluster of every member still wanted.
	if !deleting {
		for _, id := range ids {
			v := views[id]
			if v.pool == nil {
				continue
			}
			role := v1.RoleWorker
			switch {
			case id == c.Internal.InitHost:
				role = v1.RoleInit
			case v.pool.ControlPlane:
				role = v1.RoleControlPlane
			}
			v.role = role
			hc := &v1.HostCluster{
				Name: name, Project: project, Role: role, Pool: v.pool.Name,
				AllowWorkloads: v.pool.ControlPlane && v.pool.AllowWorkloads,
				JoinToken:      joinToken, VIP: c.Spec.VIP,
				SSHKeys: c.Spec.SSHKeys, NTPServers: c.Spec.NTPServers,
				OS: rendered.OS, Distro: rendered.Distro, Layers: rendered.Layers,
				UpgradeGranted: true,
			}
			if role != v1.RoleInit {
				hc.JoinEndpoint = endpoint
			}
			v.desired = hc
		}
	}

	s.planUpgradeTurn(c, views, ids, event)
	s.orderPoolChanges(c, views, ids)

	// Write the specs that changed; release the hosts that are done.
	var released []string
	forceAfter, _ := time.ParseDuration(c.Spec.ForceDeleteAfter)
	for _, id := range ids {
		v := views[id]
		if v.hold {
			continue
		}
		var hc *v1.HostCluster
		switch {
		case v.desired != nil:
			if v.role != v1.RoleInit && !initUp && (v.spec == nil || v.spec.Cluster == nil) {
				continue // joiners start once the init node's control plane is up
			}
			hc = v.desired
		case v.spec != nil && v.spec.Cluster != nil:
			hc = v.spec.Cluster
			if !hc.Remove {
				cp := *hc
				cp.Remove = true
				hc = &cp
			}
		}
		done := hc == nil || hc.Remove && v.applied && v.report.Removed
		forced := false
		if !done && deleting && forceAfter > 0 && c.Status.DeletingSince != nil && s.now().Sub(*c.Status.DeletingSince) > forceAfter {
			done, forced = true, true
		}
		if done && v.desired == nil {
			if err := s.releaseHost(ctx, c, id); err != nil {
				return err
			}
			released = append(released, id)
			if forced {
				event(objects.EventWarning, "ForceReleased", fmt.Sprintf("host %s did not confirm its teardown within %s; released anyway", id, forceAfter))
			} else {
				event(objects.EventNormal, "NodeRemoved", "host "+id+" left the cluster and is Ready again")
			}
			continue
		}
		if err := s.writeHostSpec(ctx, id, project, hc, v); err != nil {
			return err
		}
	}
	c.Internal.Members = slices.DeleteFunc(c.Internal.Members, func(id string) bool { return slices.Contains(released, id) })
	if deleting && forceAfter > 0 && len(c.Internal.Members) > 0 && c.Status.DeletingSince != nil {
		wait := forceAfter - s.now().Sub(*c.Status.DeletingSince)
		if wait > 0 {
			time.AfterFunc(wait+10*time.Millisecond, func() { s.clusters.add(key) })
		}
	}

	s.summarize(c, views, deleting, event)
	return s.saveCluster(ctx, c, before, events, nil)
}

// planUpgradeTurn gives the upgrade turn to one host at a time: control
// plane first (the init node first of all), then workers. A host whose
// distro layer changes (version or configuration: either restarts it) waits
// for its turn; a failed upgrade keeps the turn
// and so stops the rollout until it recovers or the spec changes.
func (s *Service) planUpgradeTurn(c *storedCluster, views map[string]*nodeView, ids []string, event func(string, string, string)) {
	if c.Internal.Installed == nil {
		c.Internal.Installed = map[string]string{}
	}
	// What each host runs: the distro of the last spec it applied with the
	// upgrade allowed.
	for _, id := range ids {
		v := views[id]
		if v.applied && v.report.State == v1.NodeReady && v.spec.Cluster != nil && v.spec.Cluster.Distro != nil && v.spec.Cluster.UpgradeGranted && !v.spec.Cluster.Remove {
			c.Internal.Installed[id] = v.spec.Cluster.Distro.Hash
		}
	}
	for id := range c.Internal.Installed {
		if !slices.Contains(ids, id) {
			delete(c.Internal.Installed, id)
		}
	}
	needs := func(v *nodeView) bool {
		have := c.Internal.Installed[v.id]
		return v.desired != nil && have != "" && have != v.desired.Distro.Hash
	}
	if t := c.Status.Turn; t != "" {
		v := views[t]
		switch {
		case v == nil || v.desired == nil:
			c.Status.Turn = ""
		case !needs(v):
			event(objects.EventNormal, "NodeUpgraded", fmt.Sprintf("host %s runs %s %s", t, v.desired.Distro.Pack, v.desired.Distro.Version))
			c.Status.Turn = ""
		}
	}
	if c.Status.Turn == "" {
		order := slices.Clone(ids)
		rank := func(v *nodeView) int {
			switch v.role {
			case v1.RoleInit:
				return 0
			case v1.RoleControlPlane:
				return 1
			}
			return 2
		}
		slices.SortStableFunc(order, func(a, b string) int { return rank(views[a]) - rank(views[b]) })
		for _, id := range order {
			if needs(views[id]) {
				c.Status.Turn = id
				event(objects.EventNormal, "UpgradeTurn", fmt.Sprintf("host %s may upgrade %s to %s now", id, views[id].desired.Distro.Pack, views[id].desired.Distro.Version))
				break
			}
		}
	}
	for _, id := range ids {
		if v := views[id]; needs(v) {
			v.desired.UpgradeGranted = id == c.Status.Turn
		}
	}
}

// orderPoolChanges applies each pool's update strategy when hosts are
// replaced: expand-first holds the removals until the new hosts are Ready;
// contract-first holds the new hosts until the old ones are gone.
func (s *Service) orderPoolChanges(c *storedCluster, views map[string]*nodeView, ids []string) {
	for _, pool := range c.Spec.Pools {
		var adding, removing []*nodeView
		for _, id := range ids {
			v := views[id]
			if v.desired != nil && v.pool.Name == pool.Name && c.Internal.Installed[id] == "" {
				adding = append(adding, v)
			}
			if v.desired == nil && v.spec != nil && v.spec.Cluster != nil && v.spec.Cluster.Pool == pool.Name {
				removing = append(removing, v)
			}
		}
		if len(adding) == 0 || len(removing) == 0 {
			continue
		}
		held := removing // expand-first: the old host runs on until the new is Ready
		if pool.UpdateStrategy == v1.ContractFirst {
			held = adding // contract-first: no spare box; the new host waits
		}
		for _, v := range held {
			v.hold = true
		}
	}
}

// writeHostSpec stores the host's spec when it changed.
func (s *Service) writeHostSpec(ctx context.Context, id, project string, hc *v1.HostCluster, v *nodeView) error {
	hash := hostSpecHash(id, project, hc)
	if v.spec != nil && v.spec.Hash == hash {
		return nil
	}
	spec := &v1.HostSpec{TypeMeta: typeMeta(v1.KindHostSpec), Metadata: v1.ObjectMeta{Name: id, Project: project}, Hash: hash, Cluster: hc}
	typ := store.OpCreate
	if v.spec != nil {
		typ = store.OpUpdate
		spec.Metadata.Revision = v.spec.Metadata.Revision
	}
	op, err := objects.UpdateOp(v1.KindHostSpec, spec, id)
	if err != nil {
		return err
	}
	op.Type = typ
	if _, err := s.write(ctx, op); err != nil {
		return fmt.Errorf("write spec of host %q: %w", id, err)
	}
	v.spec = spec
	v.applied = v.report != nil && v.report.SpecHash == hash
	return nil
}

// claimHosts marks hosts InUse by the cluster, all or none.
func (s *Service) claimHosts(ctx context.Context, c *storedCluster, ids []string) ([]string, error) {
	var ops []store.Op
	for _, id := range ids {
		h, err := objects.GetByKey[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, id)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", id, err)
		}
		if h.Status.State == v1.HostInUse && h.Status.Cluster == c.Metadata.Name {
			continue
		}
		if h.Status.State != v1.HostReady {
			return nil, fmt.Errorf("host %s is %s, not Ready", id, h.Status.State)
		}
		h.Status.State, h.Status.Cluster = v1.HostInUse, c.Metadata.Name
		op, err := objects.UpdateOp(v1.KindEdgeHost, h, id)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op, objects.EventOp(h.Metadata.Project, v1.KindEdgeHost, id, objects.EventNormal, "InUse", "host joins cluster "+c.Metadata.Name))
	}
	if len(ops) > 0 {
		if _, err := s.write(ctx, ops...); err != nil {
			return nil, fmt.Errorf("claim hosts: %w", err)
		}
	}
	return ids, nil
}

// releaseHost returns a host to Ready and empties its spec.
func (s *Service) releaseHost(ctx context.Context, c *storedCluster, id string) error {
	for {
		h, err := objects.GetByKey[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, id)
		if errors.Is(err, errs.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var ops []store.Op
		if h.Status.State == v1.HostInUse && h.Status.Cluster == c.Metadata.Name {
			h.Status.State, h.Status.Cluster = v1.HostReady, ""
			op, err := objects.UpdateOp(v1.KindEdgeHost, h, id)
			if err != nil {
				return err
			}
			ops = append(ops, op, objects.EventOp(h.Metadata.Project, v1.KindEdgeHost, id, objects.EventNormal, "Released", "host left cluster "+c.Metadata.Name+" and is Ready"))
		}
		if spec, err := objects.GetByKey[v1.HostSpec](ctx, s.store, v1.KindHostSpec, id); err == nil && spec.Cluster != nil {
			spec.Cluster = nil
			spec.Hash = hostSpecHash(id, h.Metadata.Project, nil)
			op, err := objects.UpdateOp(v1.KindHostSpec, spec, id)
			if err != nil {
				return err
			}
			ops = append(ops, op)
		}
		if len(ops) == 0 {
			return nil
		}
		_, err = s.write(ctx, ops...)
		if errors.Is(err, errs.ErrConflict) {
			continue
		}
		return err
	}
}

// summarize derives the cluster's state, health and node list from the
// views.
func (s *Service) summarize(c *storedCluster, views map[string]*nodeView, deleting bool, event func(string, string, string)) {
	var nodes []v1.NodeStatus
	allReady, anyFailed, anyNoContact := true, "", false
	for _, id := range c.Internal.Members {
		v := views[id]
		ns := v1.NodeStatus{Host: id, Role: v.role, State: v1.NodePending}
		if v.pool != nil {
			ns.Pool = v.pool.Name
		} else if v.spec != nil && v.spec.Cluster != nil {
			ns.Pool, ns.Role = v.spec.Cluster.Pool, v.spec.Cluster.Role
		}
		if v.hold {
			ns.Message = "held by the pool's update strategy"
		}
		switch {
		case v.spec == nil || v.spec.Cluster == nil:
			ns.State, ns.Message = v1.NodePending, "waiting for the init node's control plane"
		case !v.applied:
			ns.State, ns.Message = v1.NodeApplying, "spec sent; waiting for the host"
		default:
			ns.State, ns.Message = v.report.State, v.report.Message
			ns.AppliedHash = v.report.SpecHash
			ns.KubernetesVersion = v.report.KubernetesVersion
			ns.Layers = v.report.Layers
			for _, st := range v.report.Steps {
				ns.Steps++
				if st.State == v1.StepDone {
					ns.StepsDone++
				} else if ns.Step == "" {
					ns.Step = st.Name
				}
			}
		}
		if v.host.health == v1.HealthOffline && ns.State != v1.NodeRemoved {
			ns.State, ns.Message = v1.NodeNoContact, "host is Offline"
			anyNoContact = true
		}
		if ns.State == v1.NodeFailed && anyFailed == "" {
			anyFailed = fmt.Sprintf("host %s: %s: %s", id, ns.Step, ns.Message)
		}
		if v.desired != nil && ns.State != v1.NodeReady {
			allReady = false
		}
		if v.desired == nil && !deleting {
			allReady = false // a removal is still going on
		}
		nodes = append(nodes, ns)
	}
	c.Status.Nodes = nodes

	prev := c.Status.State
	switch {
	case deleting && len(c.Internal.Members) == 0:
		c.Status.State, c.Status.Health, c.Status.Turn = v1.ClusterDeleted, v1.HealthUnknown, ""
		c.Status.Reason = ""
		event(objects.EventNormal, "Deleted", "every host tore down its part and is Ready again")
		return
	case deleting:
		c.Status.Health = v1.HealthUnknown
		return
	case anyFailed != "":
		c.Status.State, c.Status.Reason = v1.ClusterFailed, anyFailed
	case allReady:
		c.Status.State, c.Status.Reason = v1.ClusterRunning, ""
		c.Internal.ProvisionedOnce = true
	case c.Internal.ProvisionedOnce:
		c.Status.State, c.Status.Reason = v1.ClusterUpdating, ""
	default:
		c.Status.State, c.Status.Reason = v1.ClusterProvisioning, ""
	}
	switch {
	case anyFailed != "" || anyNoContact:
		c.Status.Health = v1.HealthUnhealthy
	case allReady:
		c.Status.Health = v1.HealthHealthy
	default:
		c.Status.Health = v1.HealthUnknown
	}
	if prev != c.Status.State {
		typ := objects.EventNormal
		if c.Status.State == v1.ClusterFailed {
			typ = objects.EventWarning
		}
		msg := "cluster is " + c.Status.State
		if c.Status.Reason != "" {
			msg += ": " + c.Status.Reason
		}
		event(typ, c.Status.State, msg)
	}
}

// updatesAvailable lists layers whose profile train moved past the version
// the cluster pinned.
func (s *Service) updatesAvailable(ctx context.Context, c *storedCluster) []v1.ResolvedLayerVersion {
	var out []v1.ResolvedLayerVersion
	for _, ref := range c.Spec.Profiles {
		cp, err := s.getProfile(ctx, c.Metadata.Project, ref.Name, ref.Version)
		if err != nil {
			continue
		}
		for _, r := range cp.Status.Resolved {
			pinned, ok := c.Internal.Pins[ref.Name+"/"+r.Layer]
			if ok && pinned != r.Version && catalog.Newer(r.Version, pinned) {
				out = append(out, v1.ResolvedLayerVersion{Layer: ref.Name + "/" + r.Layer, Version: r.Version})
			}
		}
	}
	return out
}

// saveCluster writes the cluster if anything changed, with the events.
func (s *Service) saveCluster(ctx context.Context, c *storedCluster, before []byte, events []store.Op, _ error) error {
	after, _ := json.Marshal(c)
	if string(after) == string(before) && len(events) == 0 {
		return nil
	}
	op, err := objects.UpdateOp(v1.KindCluster, c, "")
	if err != nil {
		return err
	}
	_, err = s.write(ctx, append([]store.Op{op}, events...)...)
	return err
}
