package api

import (
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/converter"
)

// VisibleItem is an item as Temporal's visibility store sees it: enough to
// list and filter items without asking each one.
type VisibleItem struct {
	WorkflowID     string        `json:"workflowId"`
	RunID          string        `json:"runId"`
	Integration    string        `json:"integration"`
	Owner          string        `json:"owner"`
	Team           string        `json:"team,omitempty"`
	SourceKey      string        `json:"sourceKey"`
	Status         Status        `json:"status"`
	Exception      ExceptionKind `json:"exception,omitempty"`
	AttentionSince time.Time     `json:"attentionSince,omitzero"`
	StartTime      time.Time     `json:"startTime"`
	CloseTime      time.Time     `json:"closeTime,omitzero"`
	// Execution is Temporal's own status of the run (Running, Completed, ...).
	Execution string `json:"execution"`
}

// VisibleItemFrom reads an execution's search attributes.
func VisibleItemFrom(info *workflowpb.WorkflowExecutionInfo) VisibleItem {
	v := VisibleItem{
		WorkflowID: info.GetExecution().GetWorkflowId(),
		RunID:      info.GetExecution().GetRunId(),
		StartTime:  info.GetStartTime().AsTime().UTC(),
		Execution:  executionStatus(info),
	}
	if info.GetCloseTime() != nil {
		v.CloseTime = info.GetCloseTime().AsTime().UTC()
	}
	fields := info.GetSearchAttributes().GetIndexedFields()
	dc := converter.GetDefaultDataConverter()
	keyword := func(name string) string {
		var s string
		if p, ok := fields[name]; ok {
			_ = dc.FromPayload(p, &s)
		}
		return s
	}
	v.Integration = keyword(AttrIntegrationName.GetName())
	v.Owner = keyword(AttrIntegrationOwner.GetName())
	v.Team = keyword(AttrAssignedTeam.GetName())
	v.SourceKey = keyword(AttrSourceKey.GetName())
	v.Status = Status(keyword(AttrIntegrationStatus.GetName()))
	v.Exception = ExceptionKind(keyword(AttrExceptionKind.GetName()))
	if p, ok := fields[AttrAttentionSince.GetName()]; ok {
		var t time.Time
		if dc.FromPayload(p, &t) == nil {
			v.AttentionSince = t.UTC()
		}
	}
	return v
}

func executionStatus(info *workflowpb.WorkflowExecutionInfo) string {
	s := info.GetStatus().String()
	const prefix = "WORKFLOW_EXECUTION_STATUS_"
	if len(s) > len(prefix) {
		s = s[len(prefix):]
	}
	return s
}

// StateFromVisibility is the part of an ItemState that visibility knows, for
// when the item itself cannot be asked.
func StateFromVisibility(info *workflowpb.WorkflowExecutionInfo) ItemState {
	v := VisibleItemFrom(info)
	s := ItemState{Integration: v.Integration, WorkflowID: v.WorkflowID, SourceKey: v.SourceKey, Owner: v.Owner, Team: v.Team,
		Status: v.Status, StartedAt: v.StartTime}
	if v.Exception != "" {
		s.Exception = &ExceptionState{Kind: v.Exception, Since: v.AttentionSince}
	}
	return s
}
