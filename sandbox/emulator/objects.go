package emulator

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file is the CRM's generic object store: objects of one type with
// properties, as HubSpot's CRM v3 objects API keeps contacts, companies and the
// rest. Every method expects the server's mutex to be held.

// propKind says how a property's values compare in filters and sorts.
type propKind int

const (
	kindText propKind = iota
	kindNumber
	kindDate
)

// Properties HubSpot maintains on every object; requests cannot set them.
const (
	propObjectID   = "hs_object_id"
	propCreateDate = "createdate"
)

// hubspotTime is how HubSpot writes times: RFC 3339, UTC, milliseconds.
const hubspotTime = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(hubspotTime) }

// objectType describes one CRM object type as HubSpot defines it.
type objectType struct {
	// name is the type's path segment ("companies"); label is its name in
	// HubSpot's batch errors ("COMPANY").
	name, label string
	// writable are the properties a request may set; HubSpot refuses others.
	writable map[string]bool
	// kinds are the properties that are not plain text.
	kinds map[string]propKind
	// defaults are returned when a request names no properties.
	defaults []string
	// modified names the last-modified property: lastmodifieddate on
	// contacts, hs_lastmodifieddate on the other objects.
	modified string
	// searchable are the properties a search's free-text query looks in.
	searchable []string
	// unique names a property no two live objects may share (a contact's
	// email); conflict is HubSpot's message when one would.
	unique   string
	conflict func(existingID string) string
	// touchUnchanged bumps the last-modified date on an update that changes
	// no value.
	touchUnchanged bool
	// check validates values beyond their property names.
	check func(props map[string]string) *result
}

func (t *objectType) kind(prop string) propKind { return t.kinds[prop] }

// maintainedProps are the properties HubSpot, not requests, sets: the ID, the
// creation and the last-modified date. Every read answers them besides the
// properties it names, equal to the object's id, createdAt and updatedAt.
func (t *objectType) maintainedProps() []string {
	return []string{propObjectID, propCreateDate, t.modified}
}

// maintained reports whether HubSpot, not the request, sets prop.
func (t *objectType) maintained(prop string) bool {
	return slices.Contains(t.maintainedProps(), prop)
}

// known reports whether prop is a property of the type.
func (t *objectType) known(prop string) bool { return t.writable[prop] || t.maintained(prop) }

// object is one stored CRM object.
type object struct {
	id                           string
	props                        map[string]string
	created, updated, archivedAt time.Time
	// createdText and updatedText are created and updated as HubSpot
	// writes them (formatTime), kept with them.
	createdText, updatedText string
	archived                 bool
}

// objectView is an object as the API returns it. A property the object has no
// value for is nil, which HubSpot answers as null.
type objectView struct {
	ID         string             `json:"id"`
	Properties map[string]*string `json:"properties"`
	CreatedAt  string             `json:"createdAt"`
	UpdatedAt  string             `json:"updatedAt"`
	Archived   bool               `json:"archived"`
	ArchivedAt string             `json:"archivedAt,omitempty"`
}

// objectStore holds the objects of one type.
type objectStore struct {
	typ     *objectType
	nextID  int
	objects map[string]*object
	// ordered lists every object, archived ones included, by ID.
	ordered []*object
	// index maps the lower-cased unique value of each live object to its ID.
	index map[string]string
	// byValue maps each property, then the valueKey of a value, to the
	// objects, archived ones included, whose value of the property has that
	// key, by ID. It holds every property an object has (but hs_object_id)
	// and the maintained dates, so that lookups by idProperty and searches
	// for a value need not look at every object.
	byValue map[string]map[string][]*object
}

func newObjectStore(typ *objectType, firstID int) *objectStore {
	return &objectStore{typ: typ, nextID: firstID, objects: map[string]*object{}, index: map[string]string{},
		byValue: map[string]map[string][]*object{}}
}

// value is a property's value, the maintained ones included.
func (st *objectStore) value(o *object, prop string) (string, bool) {
	switch prop {
	case propObjectID:
		return o.id, true
	case propCreateDate:
		return o.createdText, true
	case st.typ.modified:
		return o.updatedText, true
	}
	v, ok := o.props[prop]
	return v, ok
}

// dateValue is the time of a maintained date property (createdate, the
// last-modified date) as parseWhen reads its value, without formatting and
// parsing it; ok is false for other properties.
func (st *objectStore) dateValue(o *object, prop string) (t time.Time, ok bool) {
	switch prop {
	case propCreateDate:
		t = o.created
	case st.typ.modified:
		t = o.updated
	default:
		return time.Time{}, false
	}
	// The times are UTC and whole milliseconds, which their text keeps, but
	// for years it cannot write.
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// view returns the object with the named properties (the type's defaults when
// none are named) and the maintained ones, which HubSpot adds to every read. As
// in HubSpot, a named property the object has no value for is null, and a name
// that is no property of the type is ignored.
func (st *objectStore) view(o *object, names []string) objectView {
	if len(names) == 0 {
		names = st.typ.defaults
	}
	out := objectView{ID: o.id, Properties: map[string]*string{}, CreatedAt: o.createdText, UpdatedAt: o.updatedText, Archived: o.archived}
	if o.archived {
		out.ArchivedAt = formatTime(o.archivedAt)
	}
	for _, n := range append(slices.Clone(names), st.typ.maintainedProps()...) {
		if v, ok := st.value(o, n); ok {
			out.Properties[n] = &v
		} else if st.typ.known(n) {
			out.Properties[n] = nil
		}
	}
	return out
}

// fullView returns the object with every property it has.
func (st *objectStore) fullView(o *object) objectView {
	return st.view(o, slices.Sorted(maps.Keys(o.props)))
}

// get returns the object with the ID, or nil; archived chooses between live
// and archived objects, as HubSpot's archived parameter does.
func (st *objectStore) get(id string, archived bool) *object {
	if o, ok := st.objects[id]; ok && o.archived == archived {
		return o
	}
	return nil
}

// lookup finds an object by idProperty (its ID when empty), or returns nil.
// The value compares without regard to case; of several objects with it, the
// first by ID is found.
func (st *objectStore) lookup(idProperty, id string, archived bool) *object {
	switch idProperty {
	case "", propObjectID:
		return st.get(id, archived)
	case st.typ.unique:
		if !archived {
			return st.get(st.index[strings.ToLower(id)], false)
		}
	}
	for _, o := range st.withKey(idProperty, id) {
		if v, ok := st.value(o, idProperty); ok && o.archived == archived && strings.EqualFold(v, id) {
			return o
		}
	}
	return nil
}

// withKey lists by ID the objects whose value of prop has the valueKey of v:
// every object whose value equals v regardless of case (by strings.EqualFold
// or strings.ToLower), and maybe others. Callers must not modify it.
func (st *objectStore) withKey(prop, v string) []*object {
	return st.byValue[prop][valueKey(v)]
}

// sorted lists every object, archived ones included, by ID. Callers must not
// modify it.
func (st *objectStore) sorted() []*object {
	return st.ordered
}

// byID orders objects by ID.
func byID(a, b *object) int { return compareIDs(a.id, b.id) }

// addSorted adds o to objs, which are in ID order, in its place.
func addSorted(objs []*object, o *object) []*object {
	if n := len(objs); n == 0 || byID(objs[n-1], o) < 0 {
		return append(objs, o) // the common case: IDs only grow
	}
	i, _ := slices.BinarySearchFunc(objs, o, byID)
	return slices.Insert(objs, i, o)
}

// removeSorted removes o from objs, which are in ID order.
func removeSorted(objs []*object, o *object) []*object {
	i, _ := slices.BinarySearchFunc(objs, o, byID)
	for ; i < len(objs) && objs[i].id == o.id; i++ {
		if objs[i] == o {
			return slices.Delete(objs, i, i+1)
		}
	}
	return objs
}

// valueKey is the key of byValue for a value: values equal without regard to
// case, by strings.EqualFold or by strings.ToLower, have the same key. Each
// rune is lower-cased, then replaced by the least rune of its case-folding
// orbit (the runes unicode.SimpleFold cycles through), which EqualFold treats
// as equal.
func valueKey(v string) string {
	ascii, lower := true, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		ascii = ascii && c < utf8.RuneSelf
		lower = lower || 'a' <= c && c <= 'z'
	}
	if ascii {
		// The orbit of an ASCII letter is its two cases (and the Kelvin
		// sign for k, the long s for s), the upper case least.
		if !lower {
			return v
		}
		return strings.ToUpper(v)
	}
	var b strings.Builder
	b.Grow(len(v))
	for _, r := range v {
		b.WriteRune(leastFold(unicode.ToLower(r)))
	}
	return b.String()
}

// leastFold is the least rune of r's case-folding orbit.
func leastFold(r rune) rune {
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// indexed calls f with each property of o that byValue holds and its value.
func (st *objectStore) indexed(o *object, f func(prop, v string)) {
	for k, v := range o.props {
		if k != propObjectID && k != propCreateDate && k != st.typ.modified {
			f(k, v)
		}
	}
	f(propCreateDate, o.createdText)
	f(st.typ.modified, o.updatedText)
}

// addValue records in byValue that o's value of prop is v.
func (st *objectStore) addValue(prop, v string, o *object) {
	keys := st.byValue[prop]
	if keys == nil {
		keys = map[string][]*object{}
		st.byValue[prop] = keys
	}
	k := valueKey(v)
	keys[k] = addSorted(keys[k], o)
}

// removeValue forgets in byValue that o's value of prop is v.
func (st *objectStore) removeValue(prop, v string, o *object) {
	keys := st.byValue[prop]
	k := valueKey(v)
	if objs := removeSorted(keys[k], o); len(objs) > 0 {
		keys[k] = objs
	} else {
		delete(keys, k)
	}
}

// setUpdated sets o's last-modified date, which byValue holds.
func (st *objectStore) setUpdated(o *object, t time.Time) {
	was := o.updatedText
	o.updated, o.updatedText = t, formatTime(t)
	if o.updatedText != was {
		st.removeValue(st.typ.modified, was, o)
		st.addValue(st.typ.modified, o.updatedText, o)
	}
}

// compareIDs orders numeric IDs by number.
func compareIDs(a, b string) int {
	x, _ := strconv.ParseInt(a, 10, 64)
	y, _ := strconv.ParseInt(b, 10, 64)
	if x != y {
		return compareInts(x, y)
	}
	return strings.Compare(a, b)
}

func compareInts(x, y int64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// validate checks a create or update the way HubSpot does: known, writable
// properties with valid values.
func (st *objectStore) validate(props map[string]string) *result {
	for _, name := range slices.Sorted(maps.Keys(props)) {
		if st.typ.maintained(name) {
			return invalidProperty(name, "READ_ONLY_VALUE", fmt.Sprintf("%s is a read only property; its value cannot be set.", name))
		}
		if !st.typ.writable[name] {
			return &result{status: http.StatusBadRequest, body: hubspotError("VALIDATION_ERROR", fmt.Sprintf("Property \"%s\" does not exist", name))}
		}
		if v := props[name]; v != "" && st.typ.kind(name) == kindNumber {
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return invalidProperty(name, "INVALID_LONG", fmt.Sprintf("%s was not a valid number.", v))
			}
		}
	}
	if st.typ.check != nil {
		return st.typ.check(props)
	}
	return nil
}

// invalidProperty is HubSpot's 400 for a property value it refuses.
func invalidProperty(name, code, message string) *result {
	msg := fmt.Sprintf(`Property values were not valid: [{"isValid":false,"message":"%s","error":"%s","name":"%s"}]`, message, code, name)
	return &result{status: http.StatusBadRequest, body: hubspotError("VALIDATION_ERROR", msg)}
}

// clash returns the ID of another live object holding props' unique value.
func (st *objectStore) clash(props map[string]string, self string) (string, bool) {
	if st.typ.unique == "" {
		return "", false
	}
	v, ok := props[st.typ.unique]
	if !ok || v == "" {
		return "", false
	}
	id, taken := st.index[strings.ToLower(v)]
	return id, taken && id != self
}

func (st *objectStore) conflict(id string) *result {
	return &result{status: http.StatusConflict, body: hubspotError("CONFLICT", st.typ.conflict(id))}
}

// checkCreate validates a create, uniqueness included.
func (st *objectStore) checkCreate(props map[string]string) *result {
	if bad := st.validate(props); bad != nil {
		return bad
	}
	if id, taken := st.clash(props, ""); taken {
		return st.conflict(id)
	}
	return nil
}

// create validates props and stores a new object made at now.
func (st *objectStore) create(props map[string]string, now time.Time) (*object, *result) {
	if bad := st.checkCreate(props); bad != nil {
		return nil, bad
	}
	return st.insert(props, now), nil
}

// insert stores a new object without validating it.
func (st *objectStore) insert(props map[string]string, now time.Time) *object {
	now = now.UTC().Truncate(time.Millisecond)
	o := &object{id: strconv.Itoa(st.nextID), props: maps.Clone(props), created: now, updated: now,
		createdText: formatTime(now), updatedText: formatTime(now)}
	st.nextID++
	if old := st.objects[o.id]; old != nil {
		// Numbering restarted below IDs in use (SetFirstCompanyID): the new
		// object replaces the old one.
		st.ordered = removeSorted(st.ordered, old)
		st.indexed(old, func(prop, v string) { st.removeValue(prop, v, old) })
	}
	st.objects[o.id] = o
	st.ordered = addSorted(st.ordered, o)
	st.indexObject(o)
	st.indexed(o, func(prop, v string) { st.addValue(prop, v, o) })
	return o
}

func (st *objectStore) indexObject(o *object) {
	if v := o.props[st.typ.unique]; st.typ.unique != "" && v != "" {
		st.index[strings.ToLower(v)] = o.id
	}
}

func (st *objectStore) unindexObject(o *object) {
	if v := strings.ToLower(o.props[st.typ.unique]); st.typ.unique != "" && st.index[v] == o.id {
		delete(st.index, v)
	}
}

// checkUpdate validates an update of o, uniqueness included.
func (st *objectStore) checkUpdate(o *object, props map[string]string) *result {
	if bad := st.validate(props); bad != nil {
		return bad
	}
	if id, taken := st.clash(props, o.id); taken {
		return st.conflict(id)
	}
	return nil
}

// update validates and applies props to o at now; it reports whether the
// object's state changed (its last-modified date included).
func (st *objectStore) update(o *object, props map[string]string, now time.Time) (bool, *result) {
	if bad := st.checkUpdate(o, props); bad != nil {
		return false, bad
	}
	return st.apply(o, props, now, st.typ.touchUnchanged), nil
}

// apply sets props on o without validating them and bumps its last-modified
// date when a value changed or touch is set; it reports whether it did.
func (st *objectStore) apply(o *object, props map[string]string, now time.Time, touch bool) bool {
	st.unindexObject(o)
	changed := false
	for k, v := range props {
		if old, ok := o.props[k]; !ok || old != v {
			indexed := k != propObjectID && k != propCreateDate && k != st.typ.modified
			if ok && indexed {
				st.removeValue(k, old, o)
			}
			o.props[k] = v
			if indexed {
				st.addValue(k, v, o)
			}
			changed = true
		}
	}
	st.indexObject(o)
	if changed || touch {
		st.setUpdated(o, now.UTC().Truncate(time.Millisecond))
	}
	return changed || touch
}

// archive moves o to the recycling bin at now.
func (st *objectStore) archive(o *object, now time.Time) {
	now = now.UTC().Truncate(time.Millisecond)
	st.unindexObject(o)
	o.archived, o.archivedAt = true, now
	st.setUpdated(o, now)
}

// restore brings o back from the recycling bin at now. It refuses when a live
// object took o's unique value meanwhile.
func (st *objectStore) restore(o *object, now time.Time) *result {
	if id, taken := st.clash(o.props, o.id); taken {
		return st.conflict(id)
	}
	o.archived, o.archivedAt = false, time.Time{}
	st.setUpdated(o, now.UTC().Truncate(time.Millisecond))
	st.indexObject(o)
	return nil
}

// count returns how many objects are live and how many archived.
func (st *objectStore) count() (live, archived int) {
	for _, o := range st.objects {
		if o.archived {
			archived++
		} else {
			live++
		}
	}
	return live, archived
}
