package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/signalbox-dev/signalbox/api"
)

// schedule shows an integration's poll schedule, or pauses, resumes or
// triggers it.
func (a *app) schedule(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("signals schedule", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	pause := fs.String("pause", "", "pause the polls, saying why")
	resume := fs.Bool("resume", false, "resume paused polls")
	trigger := fs.Bool("trigger", false, "poll now (after a running poll, if one runs)")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(a.stderr, "usage: signals schedule INTEGRATION [--pause \"why\" | --resume | --trigger]")
		return errUsage
	}
	name := args[0]
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	if _, err := api.SpecByName(name); err != nil {
		fmt.Fprintln(a.stderr, "signals schedule:", err)
		return errUsage
	}
	set := 0
	for _, on := range []bool{*pause != "", *resume, *trigger} {
		if on {
			set++
		}
	}
	if set > 1 {
		fmt.Fprintln(a.stderr, "signals schedule: give one of --pause, --resume and --trigger")
		return errUsage
	}
	c, err := a.temporal(ctx)
	if err != nil {
		return err
	}
	h := c.ScheduleClient().GetHandle(ctx, api.ScheduleID(name))
	switch {
	case *pause != "":
		err = h.Pause(ctx, client.SchedulePauseOptions{Note: *pause + " (" + a.actor("") + ")"})
	case *resume:
		err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: "resumed by " + a.actor("")})
	case *trigger:
		err = h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE})
	}
	if err != nil {
		return scheduleError(name, err)
	}
	d, err := h.Describe(ctx)
	if err != nil {
		return scheduleError(name, err)
	}
	a.printSchedule(name, d)
	return nil
}

func scheduleError(name string, err error) error {
	if strings.Contains(err.Error(), "not found") {
		return fmt.Errorf("%s has no poll schedule yet: the workers create it when they start", name)
	}
	return fmt.Errorf("schedule of %s: %w", name, err)
}

func (a *app) printSchedule(name string, d *client.ScheduleDescription) {
	state := "running"
	if d.Schedule.State.Paused {
		state = "paused: " + d.Schedule.State.Note
	}
	fmt.Fprintf(a.stdout, "schedule %s (%s)\n", api.ScheduleID(name), state)
	for _, iv := range d.Schedule.Spec.Intervals {
		fmt.Fprintf(a.stdout, "  every %s\n", iv.Every)
	}
	if len(d.Info.NextActionTimes) > 0 {
		fmt.Fprintf(a.stdout, "  next poll %s\n", d.Info.NextActionTimes[0].Local().Format(time.DateTime))
	}
	fmt.Fprintf(a.stdout, "  polls so far %d, skipped while one ran %d\n", d.Info.NumActions, d.Info.NumActionsSkippedOverlap)
	for _, r := range d.Info.RecentActions {
		if r.StartWorkflowResult != nil {
			fmt.Fprintf(a.stdout, "  %s  %s\n", r.ActualTime.Local().Format(time.DateTime), r.StartWorkflowResult.WorkflowID)
		}
	}
}
