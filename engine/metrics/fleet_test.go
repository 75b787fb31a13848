package metrics

import (
	"fmt"
	"testing"
)

// fleetSeries gathers databus_fleet_replicas by revision, and the fleet's
// other gauges by name.
func fleetSeries(t *testing.T, m *Metrics) (revisions, gauges map[string]float64) {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	revisions, gauges = map[string]float64{}, map[string]float64{}
	for _, f := range mfs {
		for _, s := range f.GetMetric() {
			if f.GetName() == "databus_fleet_replicas" {
				revisions[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
			} else if s.GetGauge() != nil {
				gauges[f.GetName()] = s.GetGauge().GetValue()
			}
		}
	}
	return revisions, gauges
}

// TestSetFleetBound: at most MaxFleetRevisions revision labels, the least
// served summed under "other"; labels no longer served are deleted.
func TestSetFleetBound(t *testing.T) {
	m := New()
	var revs []FleetRevision
	for i := 0; i < 12; i++ {
		revs = append(revs, FleetRevision{Revision: fmt.Sprintf("rev%02d", i), Replicas: 20 - i})
	}
	m.SetFleet(revs, true, 2, true)
	got, g := fleetSeries(t, m)
	if len(got) != MaxFleetRevisions || got["rev00"] != 20 || got["rev06"] != 14 || got["rev07"] != 0 {
		t.Errorf("series: %v", got)
	}
	// rev07..rev11 (13+12+11+10+9) are the least served.
	if got["other"] != 55 {
		t.Errorf("other = %v, want 55", got["other"])
	}
	if g["databus_fleet_drift"] != 1 || g["databus_fleet_stale_replicas"] != 2 || g["databus_fleet_heartbeat_last_success"] != 1 {
		t.Errorf("gauges: %v", g)
	}

	m.SetFleet([]FleetRevision{{Revision: "rev03", Replicas: 3}}, false, 0, false)
	got, g = fleetSeries(t, m)
	if len(got) != 1 || got["rev03"] != 3 {
		t.Errorf("series after the fleet converged: %v", got)
	}
	if g["databus_fleet_drift"] != 0 || g["databus_fleet_heartbeat_last_success"] != 0 {
		t.Errorf("gauges: %v", g)
	}
}
