package eas

import "github.com/easgate/easgate/eas/wbxml"

// GetItemEstimateInfo is what ReadGetItemEstimate found in a
// GetItemEstimate request.
type GetItemEstimateInfo struct {
	// Collections in body order. The slice keeps its capacity across
	// calls.
	Collections []EstimateCollection
}

// EstimateCollection is one Collection of a GetItemEstimate request.
type EstimateCollection struct {
	// SyncKey is the airsync:SyncKey the client holds for the collection.
	SyncKey string
	// CollectionID is the folder's ServerId.
	CollectionID string
	// Class is sent by 12.x clients ("Email", "Calendar", ...).
	Class string
}

// ReadGetItemEstimate reads a GetItemEstimate request (MS-ASCMD §2.2.1.9):
// Collections > Collection > {airsync:SyncKey, CollectionId, Class}; 12.x's
// FilterType and 14.0's ConversationMode and Options are skipped. dst is
// reset first; dst.Collections keeps its capacity and equal strings are
// reused. An empty body, another root element and data after the root
// element are errors, as are more than MaxSyncCollections collections and
// ids over MaxSyncIDLen bytes (BodyTooLong). A request without
// collections is not an error here: the caller answers it.
func ReadGetItemEstimate(body []byte, dst *GetItemEstimateInfo) error {
	*dst = GetItemEstimateInfo{Collections: dst.Collections[:0]}
	r := newBodyReader("GetItemEstimate", body)
	defer r.release()
	if len(body) == 0 {
		return r.empty()
	}
	return r.document(wbxml.ItemEstimateGetItemEstimate, func(tok wbxml.Token) error {
		if tok.Tag != wbxml.ItemEstimateCollections {
			return r.skip(tok)
		}
		return r.each(tok, func(tok wbxml.Token) error {
			if tok.Tag != wbxml.ItemEstimateCollection {
				return r.skip(tok)
			}
			if err := r.bound(tok, len(dst.Collections), MaxSyncCollections, "collections"); err != nil {
				return err
			}
			return r.estimateCollection(tok, bodyGrow(&dst.Collections))
		})
	})
}

func (r *bodyReader) estimateCollection(start wbxml.Token, c *EstimateCollection) error {
	ids := idFields{
		tags: [3]wbxml.Tag{wbxml.AirSyncSyncKey, wbxml.ItemEstimateCollectionId, wbxml.ItemEstimateClass},
		dst:  [3]*string{&c.SyncKey, &c.CollectionID, &c.Class},
	}
	defer ids.clear()
	return r.each(start, func(tok wbxml.Token) error {
		if ok, err := ids.read(r, tok); ok {
			return err
		}
		return r.skip(tok)
	})
}
