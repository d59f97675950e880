-- Wireshark dissector for the RSerPool TCP mapping of this project.
--
-- Each TCP-mapping record has a 12-byte header (all big-endian):
--   u8  record type: 1 DATA, 2 HEARTBEAT-REQUEST, 3 HEARTBEAT-ACK
--   u8  flags (0)
--   u16 stream identifier (0)
--   u32 record length, header included (12 .. 1048576)
--   u32 PPID (DATA: 11 ASAP, 12 ENRP, 32 FGP; heartbeats: 0)
-- followed by the payload. DATA payloads are handed to Wireshark's own
-- dissectors by PPID; heartbeat payloads are opaque bytes.
--
-- Records are reassembled across TCP segments (desegment_offset/len). The dissector is registered on
-- TCP ports 3863 and 9901 (changeable in the preferences), offered in
-- "Decode As", and tried heuristically on every TCP connection so that
-- ephemeral ports work too (the heuristic can be switched off).
--
-- Use: tshark -X lua_script:rserpool-tcp-mapping.lua -r capture.pcap
--      or copy the file into Wireshark's personal plugins folder.

local HEADER_SIZE = 12
local MAX_RECORD = 1048576

local tcpmap = Proto("rserpool_tcpmap", "RSerPool TCP Mapping")

local record_types = {
    [1] = "DATA",
    [2] = "HEARTBEAT-REQUEST",
    [3] = "HEARTBEAT-ACK",
}

local ppid_names = {
    [0] = "none",
    [11] = "ASAP",
    [12] = "ENRP",
    [32] = "Fractal Generator Protocol",
    [33] = "Ping Pong Protocol",
    [34] = "CalcApp",
    [35] = "Scripting Service Protocol",
}

-- PPID -> name of the Wireshark dissector for the payload.
local ppid_dissector_names = {
    [11] = "asap",
    [12] = "enrp",
    [32] = "fractalgeneratorprotocol",
}

-- PPIDs whose messages carry their own 16-bit length at offset 2.
local self_delimiting = { [11] = true, [12] = true, [32] = true }

local f_type = ProtoField.uint8("rserpool_tcpmap.type", "Record Type", base.DEC, record_types)
local f_flags = ProtoField.uint8("rserpool_tcpmap.flags", "Flags", base.HEX)
local f_stream = ProtoField.uint16("rserpool_tcpmap.stream", "Stream Identifier", base.DEC)
local f_length = ProtoField.uint32("rserpool_tcpmap.length", "Record Length", base.DEC)
local f_ppid = ProtoField.uint32("rserpool_tcpmap.ppid", "Payload Protocol Identifier",
                                 base.DEC, ppid_names)
local f_payload = ProtoField.bytes("rserpool_tcpmap.payload", "Payload")
local f_opaque = ProtoField.bytes("rserpool_tcpmap.heartbeat_info", "Heartbeat Information")
tcpmap.fields = { f_type, f_flags, f_stream, f_length, f_ppid, f_payload, f_opaque }

local ef_bad_type = ProtoExpert.new("rserpool_tcpmap.bad_type", "Unknown record type",
                                    expert.group.MALFORMED, expert.severity.ERROR)
local ef_bad_length = ProtoExpert.new("rserpool_tcpmap.bad_length",
                                      "Record length outside 12..1048576",
                                      expert.group.MALFORMED, expert.severity.ERROR)
local ef_inner_length = ProtoExpert.new("rserpool_tcpmap.inner_length",
                                        "Message length disagrees with the record length",
                                        expert.group.MALFORMED, expert.severity.ERROR)
tcpmap.experts = { ef_bad_type, ef_bad_length, ef_inner_length }

local default_ports = "3863,9901"
tcpmap.prefs.ports = Pref.range("TCP ports", default_ports,
                                "TCP ports on which records are expected", 65535)
tcpmap.prefs.heuristic = Pref.bool("Try heuristically on all TCP connections", true,
                                   "Recognise TCP-mapping records on any TCP port by their header")

-- Payload dissectors are looked up lazily (other protocols may register after
-- this script is loaded): first in the SCTP PPID table, which is where
-- Wireshark registers ASAP, ENRP and FGP, then by dissector name.
local payload_dissectors = {}
local function payload_dissector(ppid)
    local cached = payload_dissectors[ppid]
    if cached ~= nil then
        return cached or nil
    end
    local handle = nil
    local ok, table = pcall(DissectorTable.get, "sctp.ppi")
    if ok and table ~= nil then
        local found, result = pcall(table.get_dissector, table, ppid)
        if found then
            handle = result
        end
    end
    local name = ppid_dissector_names[ppid]
    if handle == nil and name ~= nil then
        local found, result = pcall(Dissector.get, name)
        if found then
            handle = result
        end
    end
    payload_dissectors[ppid] = handle or false
    return handle
end

local function dissect_record(tvb, pinfo, tree)
    local rtype = tvb(0, 1):uint()
    local length = tvb(4, 4):uint()
    local ppid = tvb(8, 4):uint()
    local label = record_types[rtype] or string.format("Unknown (%d)", rtype)

    local subtree = tree:add(tcpmap, tvb(0, math.min(tvb:len(), HEADER_SIZE)))
    subtree:append_text(string.format(", %s, PPID %d, %d bytes", label, ppid, length))
    local type_item = subtree:add(f_type, tvb(0, 1))
    subtree:add(f_flags, tvb(1, 1))
    subtree:add(f_stream, tvb(2, 2))
    local length_item = subtree:add(f_length, tvb(4, 4))
    subtree:add(f_ppid, tvb(8, 4))

    pinfo.cols.protocol:set("TCPMAP")
    if record_types[rtype] == nil then
        type_item:add_proto_expert_info(ef_bad_type)
    end
    if length < HEADER_SIZE or length > MAX_RECORD then
        length_item:add_proto_expert_info(ef_bad_length)
        return tvb:len()
    end
    if length > tvb:len() then
        return tvb:len()
    end
    if length == HEADER_SIZE then
        pinfo.cols.info:append(" " .. label)
        return length
    end

    local payload = tvb(HEADER_SIZE, length - HEADER_SIZE):tvb()
    if rtype ~= 1 then
        subtree:add(f_opaque, payload())
        pinfo.cols.info:append(" " .. label)
        return length
    end
    if self_delimiting[ppid] and payload:len() >= 4 then
        local inner = payload(2, 2):uint()
        local pad = payload:len() - inner
        if pad < 0 or pad > 3 then
            length_item:add_proto_expert_info(ef_inner_length)
        end
    end
    local handle = payload_dissector(ppid)
    if handle ~= nil then
        handle:call(payload, pinfo, tree)
    else
        subtree:add(f_payload, payload())
        pinfo.cols.info:append(string.format(" DATA (PPID %d)", ppid))
    end
    return length
end

-- Walks the records of a TCP payload; asks TCP for more data when a record
-- (or its header) continues in a later segment.
function tcpmap.dissector(tvb, pinfo, tree)
    local total = tvb:len()
    local offset = 0
    while offset < total do
        local remaining = total - offset
        if remaining < HEADER_SIZE then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = DESEGMENT_ONE_MORE_SEGMENT
            return total
        end
        local length = tvb(offset + 4, 4):uint()
        if length < HEADER_SIZE or length > MAX_RECORD then
            -- Framing is lost: show the rest once, flagged as malformed.
            dissect_record(tvb(offset):tvb(), pinfo, tree)
            return total
        end
        if remaining < length then
            pinfo.desegment_offset = offset
            pinfo.desegment_len = length - remaining
            return total
        end
        dissect_record(tvb(offset, length):tvb(), pinfo, tree)
        offset = offset + length
    end
    return total
end

local f_tcp_seq = Field.new("tcp.seq")

-- Heuristic: the segment must start with a plausible record header. The very
-- first data segment of a connection (relative sequence number 1) may hold
-- only the start of a header; then its first bytes must fit one.
local function looks_like_record(tvb)
    local available = tvb:len()
    if available < HEADER_SIZE then
        local seq = f_tcp_seq()
        if seq == nil or seq.value ~= 1 or available < 2 then
            return false
        end
        return record_types[tvb(0, 1):uint()] ~= nil and tvb(1, 1):uint() == 0
    end
    local rtype = tvb(0, 1):uint()
    local flags = tvb(1, 1):uint()
    local length = tvb(4, 4):uint()
    local ppid = tvb(8, 4):uint()
    if record_types[rtype] == nil or flags ~= 0 then
        return false
    end
    if length < HEADER_SIZE or length > MAX_RECORD then
        return false
    end
    if rtype ~= 1 then
        return ppid == 0
    end
    if ppid == 0 or length == HEADER_SIZE then
        return false
    end
    if self_delimiting[ppid] and available >= HEADER_SIZE + 4 then
        local pad = (length - HEADER_SIZE) - tvb(HEADER_SIZE + 2, 2):uint()
        return pad >= 0 and pad <= 3
    end
    return true
end

local function heuristic(tvb, pinfo, tree)
    if not tcpmap.prefs.heuristic or not looks_like_record(tvb) then
        return false
    end
    -- Keep the rest of this connection with this dissector.
    pinfo.conversation = tcpmap
    tcpmap.dissector(tvb, pinfo, tree)
    return true
end

local tcp_port_table = DissectorTable.get("tcp.port")
local registered_ports = default_ports

tcp_port_table:add(default_ports, tcpmap)
tcp_port_table:add_for_decode_as(tcpmap)
tcpmap:register_heuristic("tcp", heuristic)

function tcpmap.prefs_changed()
    local ports = tostring(tcpmap.prefs.ports)
    if ports ~= registered_ports then
        if registered_ports ~= "" then
            tcp_port_table:remove(registered_ports, tcpmap)
        end
        if ports ~= "" then
            tcp_port_table:add(ports, tcpmap)
        end
        registered_ports = ports
    end
end
