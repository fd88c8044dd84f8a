package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// ReportStatus stores what an agent says about applying its spec. Agents
// report on change only; an identical report is not written again.
func (s *Service) ReportStatus(ctx context.Context, a *AgentIdentity, rep *v1.NodeReportSpec) error {
	if len(rep.Steps) > 200 {
		return errs.Field("steps", "at most 200 steps")
	}
	for {
		cur, err := objects.GetByKey[v1.NodeReport](ctx, s.store, v1.KindNodeReport, a.HostID)
		var op store.Op
		switch {
		case errors.Is(err, errs.ErrNotFound):
			op, err = objects.CreateOp(v1.KindNodeReport, &v1.NodeReport{
				TypeMeta: typeMeta(v1.KindNodeReport),
				Metadata: v1.ObjectMeta{Name: a.HostID, Project: a.Project},
				Spec:     *rep,
			}, a.HostID)
		case err != nil:
			return err
		default:
			old, _ := json.Marshal(cur.Spec)
			now, _ := json.Marshal(rep)
			if string(old) == string(now) {
				return nil
			}
			cur.Spec = *rep
			op, err = objects.UpdateOp(v1.KindNodeReport, cur, a.HostID)
		}
		if err != nil {
			return err
		}
		_, err = s.write(ctx, op)
		if errors.Is(err, errs.ErrConflict) || errors.Is(err, errs.ErrAlreadyExists) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store report of host %q: %w", a.HostID, err)
		}
		return nil
	}
}
