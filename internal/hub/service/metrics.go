package service

import (
	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

var (
	hostsDesc = prometheus.NewDesc("outpost_hosts", "Edge hosts by state and health.", []string{"state", "health"}, nil)
	// Counters live on the service, not globals, so tests can run many hubs.
)

type collector struct {
	s          *Service
	heartbeats prometheus.Counter
	enrolls    *prometheus.CounterVec
}

func newCollector(s *Service) *collector {
	return &collector{
		s:          s,
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{Name: "outpost_agent_heartbeats_total", Help: "Heartbeats received."}),
		enrolls:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "outpost_agent_enrollments_total", Help: "Enrollment answers by result."}, []string{"result"}),
	}
}

// Collector exports the fleet's host counts (read from memory at scrape
// time) and the agent API counters.
func (s *Service) Collector() prometheus.Collector { return s.metrics }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hostsDesc
	c.heartbeats.Describe(ch)
	c.enrolls.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counts := map[[2]string]int{}
	c.s.hosts.each(func(_ string, e hostEntry) {
		counts[[2]string{e.state, e.health}]++
	})
	for _, state := range []string{v1.HostUnpaired, v1.HostPendingApproval, v1.HostReady, v1.HostInUse} {
		for _, health := range []string{v1.HealthUnknown, v1.HealthHealthy, v1.HealthUnhealthy, v1.HealthOffline} {
			ch <- prometheus.MustNewConstMetric(hostsDesc, prometheus.GaugeValue, float64(counts[[2]string{state, health}]), state, health)
		}
	}
	c.heartbeats.Collect(ch)
	c.enrolls.Collect(ch)
}
