package eas

// Common status codes, MS-ASCMD §2.2.2 (values 101 and up, defined from
// protocol 14.0). A server sends one of them as the Status of the command's
// own root element ("<FolderSync><Status>142</Status></FolderSync>");
// clients older than 14.0 never see them as XML and get an HTTP code instead
// (see ChooseErrorAnswer). Command-specific status values are below 100 and
// are not listed here.
//
// The names follow MS-ASCMD. For 178–185 Exchange's own StatusCode enum
// numbers a few codes differently from the specification (it has
// InvalidStartTime … InvalidTimezone at 180–184 and InvalidRecipients at
// 185); the constants below follow the specification, and codes it leaves
// unnamed have no constant and no StatusText.
const (
	StatusInvalidContent                                  = 101
	StatusInvalidWBXML                                    = 102
	StatusInvalidXML                                      = 103
	StatusInvalidDateTime                                 = 104
	StatusInvalidCombinationOfIDs                         = 105
	StatusInvalidIDs                                      = 106
	StatusInvalidMIME                                     = 107
	StatusDeviceIDMissingOrInvalid                        = 108
	StatusDeviceTypeMissingOrInvalid                      = 109
	StatusServerError                                     = 110
	StatusServerErrorRetryLater                           = 111
	StatusActiveDirectoryAccessDenied                     = 112
	StatusMailboxQuotaExceeded                            = 113
	StatusMailboxServerOffline                            = 114
	StatusSendQuotaExceeded                               = 115
	StatusMessageRecipientUnresolved                      = 116
	StatusMessageReplyNotAllowed                          = 117
	StatusMessagePreviouslySent                           = 118
	StatusMessageHasNoRecipient                           = 119
	StatusMailSubmissionFailed                            = 120
	StatusMessageReplyFailed                              = 121
	StatusAttachmentIsTooLarge                            = 122
	StatusUserHasNoMailbox                                = 123
	StatusUserCannotBeAnonymous                           = 124
	StatusUserPrincipalCouldNotBeFound                    = 125
	StatusUserDisabledForSync                             = 126
	StatusUserOnNewMailboxCannotSync                      = 127
	StatusUserOnLegacyMailboxCannotSync                   = 128
	StatusDeviceIsBlockedForThisUser                      = 129
	StatusAccessDenied                                    = 130
	StatusAccountDisabled                                 = 131
	StatusSyncStateNotFound                               = 132
	StatusSyncStateLocked                                 = 133
	StatusSyncStateCorrupt                                = 134
	StatusSyncStateAlreadyExists                          = 135
	StatusSyncStateVersionInvalid                         = 136
	StatusCommandNotSupported                             = 137
	StatusVersionNotSupported                             = 138
	StatusDeviceNotFullyProvisionable                     = 139
	StatusRemoteWipeRequested                             = 140
	StatusLegacyDeviceOnStrictPolicy                      = 141
	StatusDeviceNotProvisioned                            = 142
	StatusPolicyRefresh                                   = 143
	StatusInvalidPolicyKey                                = 144
	StatusExternallyManagedDevicesNotAllowed              = 145
	StatusNoRecurrenceInCalendar                          = 146
	StatusUnexpectedItemClass                             = 147
	StatusRemoteServerHasNoSSL                            = 148
	StatusInvalidStoredRequest                            = 149
	StatusItemNotFound                                    = 150
	StatusTooManyFolders                                  = 151
	StatusNoFoldersFound                                  = 152
	StatusItemsLostAfterMove                              = 153
	StatusFailureInMoveOperation                          = 154
	StatusMoveCommandDisallowedForNonPersistentMoveAction = 155
	StatusMoveCommandInvalidDestinationFolder             = 156
	StatusAvailabilityTooManyRecipients                   = 160
	StatusAvailabilityDLLimitReached                      = 161
	StatusAvailabilityTransientFailure                    = 162
	StatusAvailabilityFailure                             = 163
	StatusBodyPartPreferenceTypeNotSupported              = 164
	StatusDeviceInformationRequired                       = 165
	StatusInvalidAccountID                                = 166
	StatusAccountSendDisabled                             = 167
	StatusIRMFeatureDisabled                              = 168
	StatusIRMTransientError                               = 169
	StatusIRMPermanentError                               = 170
	StatusIRMInvalidTemplateID                            = 171
	StatusIRMOperationNotPermitted                        = 172
	StatusNoPicture                                       = 173
	StatusPictureTooLarge                                 = 174
	StatusPictureLimitReached                             = 175
	StatusBodyPartConversationTooLarge                    = 176
	StatusMaximumDevicesReached                           = 177
	StatusInvalidMimeBodyCombination                      = 178
	StatusInvalidSmartForwardParameters                   = 179
	StatusInvalidRecipients                               = 183
	StatusOneOrMoreExceptionsFailed                       = 184
)

// Highest common status code each protocol version may carry in a body
// (PROTOCOL.md §1.7; Exchange's LastKnown140Error/141/160). Versions after
// 16.0 accept any code.
const (
	statusLast140 = 163
	statusLast141 = 177
	statusLast160 = 185
)

// statusNames holds the MS-ASCMD name of each common status, indexed by
// code-101.
var statusNames = [...]string{
	StatusInvalidContent - 101:                                  "InvalidContent",
	StatusInvalidWBXML - 101:                                    "InvalidWBXML",
	StatusInvalidXML - 101:                                      "InvalidXML",
	StatusInvalidDateTime - 101:                                 "InvalidDateTime",
	StatusInvalidCombinationOfIDs - 101:                         "InvalidCombinationOfIDs",
	StatusInvalidIDs - 101:                                      "InvalidIDs",
	StatusInvalidMIME - 101:                                     "InvalidMIME",
	StatusDeviceIDMissingOrInvalid - 101:                        "DeviceIdMissingOrInvalid",
	StatusDeviceTypeMissingOrInvalid - 101:                      "DeviceTypeMissingOrInvalid",
	StatusServerError - 101:                                     "ServerError",
	StatusServerErrorRetryLater - 101:                           "ServerErrorRetryLater",
	StatusActiveDirectoryAccessDenied - 101:                     "ActiveDirectoryAccessDenied",
	StatusMailboxQuotaExceeded - 101:                            "MailboxQuotaExceeded",
	StatusMailboxServerOffline - 101:                            "MailboxServerOffline",
	StatusSendQuotaExceeded - 101:                               "SendQuotaExceeded",
	StatusMessageRecipientUnresolved - 101:                      "MessageRecipientUnresolved",
	StatusMessageReplyNotAllowed - 101:                          "MessageReplyNotAllowed",
	StatusMessagePreviouslySent - 101:                           "MessagePreviouslySent",
	StatusMessageHasNoRecipient - 101:                           "MessageHasNoRecipient",
	StatusMailSubmissionFailed - 101:                            "MailSubmissionFailed",
	StatusMessageReplyFailed - 101:                              "MessageReplyFailed",
	StatusAttachmentIsTooLarge - 101:                            "AttachmentIsTooLarge",
	StatusUserHasNoMailbox - 101:                                "UserHasNoMailbox",
	StatusUserCannotBeAnonymous - 101:                           "UserCannotBeAnonymous",
	StatusUserPrincipalCouldNotBeFound - 101:                    "UserPrincipalCouldNotBeFound",
	StatusUserDisabledForSync - 101:                             "UserDisabledForSync",
	StatusUserOnNewMailboxCannotSync - 101:                      "UserOnNewMailboxCannotSync",
	StatusUserOnLegacyMailboxCannotSync - 101:                   "UserOnLegacyMailboxCannotSync",
	StatusDeviceIsBlockedForThisUser - 101:                      "DeviceIsBlockedForThisUser",
	StatusAccessDenied - 101:                                    "AccessDenied",
	StatusAccountDisabled - 101:                                 "AccountDisabled",
	StatusSyncStateNotFound - 101:                               "SyncStateNotFound",
	StatusSyncStateLocked - 101:                                 "SyncStateLocked",
	StatusSyncStateCorrupt - 101:                                "SyncStateCorrupt",
	StatusSyncStateAlreadyExists - 101:                          "SyncStateAlreadyExists",
	StatusSyncStateVersionInvalid - 101:                         "SyncStateVersionInvalid",
	StatusCommandNotSupported - 101:                             "CommandNotSupported",
	StatusVersionNotSupported - 101:                             "VersionNotSupported",
	StatusDeviceNotFullyProvisionable - 101:                     "DeviceNotFullyProvisionable",
	StatusRemoteWipeRequested - 101:                             "RemoteWipeRequested",
	StatusLegacyDeviceOnStrictPolicy - 101:                      "LegacyDeviceOnStrictPolicy",
	StatusDeviceNotProvisioned - 101:                            "DeviceNotProvisioned",
	StatusPolicyRefresh - 101:                                   "PolicyRefresh",
	StatusInvalidPolicyKey - 101:                                "InvalidPolicyKey",
	StatusExternallyManagedDevicesNotAllowed - 101:              "ExternallyManagedDevicesNotAllowed",
	StatusNoRecurrenceInCalendar - 101:                          "NoRecurrenceInCalendar",
	StatusUnexpectedItemClass - 101:                             "UnexpectedItemClass",
	StatusRemoteServerHasNoSSL - 101:                            "RemoteServerHasNoSSL",
	StatusInvalidStoredRequest - 101:                            "InvalidStoredRequest",
	StatusItemNotFound - 101:                                    "ItemNotFound",
	StatusTooManyFolders - 101:                                  "TooManyFolders",
	StatusNoFoldersFound - 101:                                  "NoFoldersFound",
	StatusItemsLostAfterMove - 101:                              "ItemsLostAfterMove",
	StatusFailureInMoveOperation - 101:                          "FailureInMoveOperation",
	StatusMoveCommandDisallowedForNonPersistentMoveAction - 101: "MoveCommandDisallowedForNonPersistentMoveAction",
	StatusMoveCommandInvalidDestinationFolder - 101:             "MoveCommandInvalidDestinationFolder",
	StatusAvailabilityTooManyRecipients - 101:                   "AvailabilityTooManyRecipients",
	StatusAvailabilityDLLimitReached - 101:                      "AvailabilityDLLimitReached",
	StatusAvailabilityTransientFailure - 101:                    "AvailabilityTransientFailure",
	StatusAvailabilityFailure - 101:                             "AvailabilityFailure",
	StatusBodyPartPreferenceTypeNotSupported - 101:              "BodyPartPreferenceTypeNotSupported",
	StatusDeviceInformationRequired - 101:                       "DeviceInformationRequired",
	StatusInvalidAccountID - 101:                                "InvalidAccountId",
	StatusAccountSendDisabled - 101:                             "AccountSendDisabled",
	StatusIRMFeatureDisabled - 101:                              "IRM_FeatureDisabled",
	StatusIRMTransientError - 101:                               "IRM_TransientError",
	StatusIRMPermanentError - 101:                               "IRM_PermanentError",
	StatusIRMInvalidTemplateID - 101:                            "IRM_InvalidTemplateID",
	StatusIRMOperationNotPermitted - 101:                        "IRM_OperationNotPermitted",
	StatusNoPicture - 101:                                       "NoPicture",
	StatusPictureTooLarge - 101:                                 "PictureTooLarge",
	StatusPictureLimitReached - 101:                             "PictureLimitReached",
	StatusBodyPartConversationTooLarge - 101:                    "BodyPart_ConversationTooLarge",
	StatusMaximumDevicesReached - 101:                           "MaximumDevicesReached",
	StatusInvalidMimeBodyCombination - 101:                      "InvalidMimeBodyCombination",
	StatusInvalidSmartForwardParameters - 101:                   "InvalidSmartForwardParameters",
	StatusInvalidRecipients - 101:                               "InvalidRecipients",
	StatusOneOrMoreExceptionsFailed - 101:                       "OneOrMoreExceptionsFailed",
}

// StatusText returns the MS-ASCMD name of a common status code
// ("DeviceIsBlockedForThisUser" for 129), or "" when code is not a named
// common status. It does not allocate.
func StatusText(code int) string {
	if code < 101 || code-101 >= len(statusNames) {
		return ""
	}
	return statusNames[code-101]
}

// statusAllowed reports whether protocol version v can carry common status
// code in a body: step 1 of the selection rule in PROTOCOL.md §1.7.
func statusAllowed(v Version, code int) bool {
	switch {
	case code <= 0:
		return false
	case v < V140:
		return code < 101
	case v == V140:
		return code <= statusLast140
	case v == V141:
		return code <= statusLast141
	case v == V160:
		return code <= statusLast160
	case v > V160:
		return true
	}
	return false // versions between the published ones (e.g. 15.0)
}
