# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled fast path of ``/v1/batch``: Segment messages straight to ``cdp.Event`` bytes.

``collector.segment.segment_to_record`` followed by the compiled Avro writer cost about
20 µs per event in CPython, most of the collector's time. This module does the same
mapping and encoding for the messages SDKs usually send (``track`` of the e-commerce
views, cart events, checkouts and orders, email events and custom events; ``page``,
``screen`` and ``identify``) in one pass over the parsed JSON, writing the Avro body into
one C buffer.

It is not a second implementation of the rules: every message it is not sure about
(``group``, ``alias``, forms, a sign-up date, an order total to compute, an id that is a
number, a time not in the SDKs' form, any value that would be an error...) comes back as
``None`` and is mapped by the Python code, which stays the reference and the only place
errors are made. Its tables (e-commerce and email event names, library sources, identify
traits, the minute memo of device times) are ``collector.segment``'s own, handed to
:class:`FastBatch`. For the messages it takes, the bytes are those of the Python path
(``tests/collector/test_segment_fast.py`` checks it with hypothesis), for server and
public write keys alike (``public``: identity events are the Python path's, which refuses
them; event times after ``received_at`` are clamped to it). Times, amounts and quantities
outside ``state.bounds`` (or an Avro ``int``) are left to the Python path, which refuses
them naming the field. It is written for
one version of ``cdp.Event``: ``SCHEMA_FINGERPRINT`` is compared with the codec's when it
is loaded (``collector.fastpath``).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_AsUTF8String
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

import orjson

from state import bounds
from state.image_url import http_url

#: The Rabin fingerprint of the ``cdp.Event`` schema this encoder writes (hex).
SCHEMA_FINGERPRINT = "7209d8aba9719b20"

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    const char* PyUnicode_AsUTF8(object) except NULL
    object PyUnicode_Substring(object, Py_ssize_t, Py_ssize_t)

# cdp.EventType symbols and cdp.Event payload branches, in schema order.
cdef enum:
    T_IDENTIFY = 0
    T_PAGE_VIEWED = 1
    T_PRODUCT_VIEWED = 2
    T_CART_ITEM_ADDED = 3
    T_CART_ITEM_REMOVED = 4
    T_CHECKOUT_STARTED = 5
    T_ORDER_COMPLETED = 6
    T_EMAIL_EVENT = 7
    T_CUSTOM = 10
    P_IDENTIFY = 0
    P_PAGE_VIEWED = 1
    P_PRODUCT_VIEWED = 2
    P_CART_ITEM_CHANGED = 3
    P_CHECKOUT_STARTED = 4
    P_ORDER_COMPLETED = 5
    P_EMAIL_EVENT = 6
    P_CUSTOM = 9

cdef int64_t INT32_MIN = -2147483648
cdef int64_t INT32_MAX = 2147483647
#: ``state.bounds``' times: ``sentAt``, ``received_at`` and the event time outside them
#: are left to the Python path (which refuses them), so the skew arithmetic below cannot
#: overflow 64 bits either.
cdef int64_t MIN_TIME_MS = bounds.MIN_TIME_MS
cdef int64_t MAX_TIME_MS = bounds.MAX_TIME_MS
#: ``state.bounds.MAX_AMOUNT``: an amount beyond it (or not finite) is the Python path's.
cdef double MAX_AMOUNT = bounds.MAX_AMOUNT

#: The symbols of ``cdp.EmailAction``, in schema order (its index is what is written).
_EMAIL_ACTION_SYMBOLS = ("delivered", "opened", "clicked", "bounced", "unsubscribed", "other")
#: The e-commerce events of ``segment.TRACK_EVENTS`` this module writes; the others (e.g.
#: forms) are the Python path's.
_TRACK_TYPES = {
    "Product Viewed": T_PRODUCT_VIEWED,
    "Product Added": T_CART_ITEM_ADDED,
    "Product Removed": T_CART_ITEM_REMOVED,
    "Checkout Started": T_CHECKOUT_STARTED,
    "Order Completed": T_ORDER_COMPLETED,
}
_dumps = orjson.dumps
_tuple_new = tuple.__new__


class Slow(Exception):
    """This message is for the Python path."""


cdef class _Buffer:
    """A growing byte buffer with Avro's primitive encodings."""

    cdef char* data
    cdef Py_ssize_t size
    cdef Py_ssize_t capacity

    def __cinit__(self):
        self.capacity = 4096
        self.size = 0
        self.data = <char*>PyMem_Malloc(self.capacity)
        if self.data is NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self.data)

    cdef int reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t wanted = self.size + extra
        cdef char* grown
        if wanted <= self.capacity:
            return 0
        while self.capacity < wanted:
            self.capacity *= 2
        grown = <char*>PyMem_Realloc(self.data, self.capacity)
        if grown is NULL:
            raise MemoryError()
        self.data = grown
        return 0

    cdef inline int byte(self, unsigned char value) except -1:
        if self.size >= self.capacity:
            self.reserve(1)
        self.data[self.size] = <char>value
        self.size += 1
        return 0

    cdef int raw(self, const char* value, Py_ssize_t length) except -1:
        self.reserve(length)
        memcpy(self.data + self.size, value, length)
        self.size += length
        return 0

    cdef int long(self, int64_t value) except -1:
        """Zig-zag varint (Avro ``int`` and ``long``)."""
        cdef uint64_t n = (<uint64_t>value << 1) ^ <uint64_t>(value >> 63)
        self.reserve(10)
        while n >= 0x80:
            self.data[self.size] = <char>((n & 0x7F) | 0x80)
            self.size += 1
            n >>= 7
        self.data[self.size] = <char>n
        self.size += 1
        return 0

    cdef int string(self, str value) except -1:
        cdef Py_ssize_t length
        cdef const char* utf8 = PyUnicode_AsUTF8AndSize(value, &length)  # lone surrogates raise
        self.long(length)
        self.raw(utf8, length)
        return 0

    cdef int double(self, double value) except -1:
        cdef uint64_t bits
        cdef int i
        memcpy(&bits, &value, 8)
        self.reserve(8)
        for i in range(8):  # little-endian, whatever the machine's order
            self.data[self.size] = <char>(bits & 0xFF)
            self.size += 1
            bits >>= 8
        return 0

    cdef int opt_double(self, object value) except -1:
        """``["null", "double"]`` of a JSON number (``_number``)."""
        if value is None:
            return self.byte(0)
        self.byte(2)
        return self.double(_number(value))

    cdef int opt_string(self, object value) except -1:
        """``["null", "string"]``: index 0, or index 1 (zig-zag 2) and the string."""
        if value is None:
            return self.byte(0)
        self.byte(2)
        return self.string(<str>value)

    cdef int text_map(self, dict values) except -1:
        """``map<string>`` of a JSON object: strings as they are, other values as JSON."""
        cdef object key, value
        if not values:
            return self.byte(0)
        self.long(len(values))
        for key, value in values.items():
            self.string(<str>key)
            if type(value) is str:
                self.string(<str>value)
            else:
                self.string((<bytes>_dumps(value)).decode())
        return self.byte(0)


cdef inline object _get(dict d, str key):
    cdef PyObject* found = PyDict_GetItem(d, key)
    return None if found is NULL else <object>found


cdef inline object _text_or_none(object value):
    """A non-empty string, else None (``_str_or_none``)."""
    if type(value) is str and PyUnicode_GET_LENGTH(value) > 0:
        return value
    return None


cdef object _opt_text(object value):
    """``segment._opt_text``; what it would refuse is Slow."""
    if value is None or type(value) is str:
        return value
    if type(value) is int or type(value) is float:
        return str(value)
    raise Slow()


cdef object _first(dict d, str key, str second, str third=None):
    """``d.get(key, d.get(second, d.get(third)))``: the first key present, even if null."""
    if key in d:
        return d[key]
    if second in d or third is None:
        return _get(d, second)
    return _get(d, third)


cdef double _number(object value) except? -1:
    """``segment._number`` for JSON numbers; a string, which ``float()`` would judge, and
    an amount that is not finite or beyond ``MAX_AMOUNT`` (refused there) are Slow."""
    cdef double number
    if type(value) is not float and type(value) is not int:
        raise Slow()
    number = <double>value  # PyFloat_AsDouble: float(value), rounded as float() rounds
    if not (-MAX_AMOUNT <= number <= MAX_AMOUNT):  # NaN fails it too
        raise Slow()
    return number


cdef int64_t _int32(object value) except? -1:
    """An Avro ``int`` of a JSON whole number (``segment._int``); anything else is Slow."""
    if type(value) is not int or not (INT32_MIN <= value <= INT32_MAX):
        raise Slow()
    return <int64_t>value


cdef object _ident(object value):
    """``userId`` / ``anonymousId``: a non-empty string, or None when absent or empty."""
    if type(value) is str:
        return value if PyUnicode_GET_LENGTH(value) > 0 else None
    if value is None:
        return None
    raise Slow()


cdef dict _object(object value):
    if type(value) is dict:
        return <dict>value
    if value is None:
        return {}
    raise Slow()


cdef int _digits(const char* s, int count) noexcept:
    """The value of ``count`` ASCII digits, or -1."""
    cdef int value = 0
    cdef int i
    for i in range(count):
        if s[i] < 48 or s[i] > 57:
            return -1
        value = value * 10 + (s[i] - 48)
    return value


cdef class FastBatch:
    """Encodes the messages of a batch as ``message_type`` tuples (topic, key, value), by
    the tables of ``segment`` (the module ``collector.segment``)."""

    cdef _Buffer out
    cdef bytes header
    cdef str topic
    cdef object message_type
    cdef dict minutes  # segment._MINUTES, filled by segment._minute
    cdef object minute
    cdef dict email_actions  # event name -> cdp.EmailAction index
    cdef frozenset typed_events
    cdef dict library_sources
    cdef tuple utm
    cdef frozenset identify_traits
    cdef frozenset identity_events  # track names a public key may not send

    def __init__(self, str topic, bytes header, message_type, segment):
        self.out = _Buffer()
        self.topic = topic
        self.header = header
        self.message_type = message_type
        self.minutes = segment._MINUTES
        self.minute = segment._minute
        self.email_actions = {
            name: _EMAIL_ACTION_SYMBOLS.index(action)
            for name, action in segment.EMAIL_ACTIONS.items()
        }
        self.typed_events = frozenset(segment.TRACK_EVENTS)
        self.library_sources = dict(segment._LIBRARY_SOURCES)
        self.utm = tuple(segment._UTM)
        self.identify_traits = frozenset(segment._IDENTIFY_TRAITS)
        self.identity_events = frozenset(segment.IDENTITY_EVENTS)

    def encode(
        self,
        list items,
        int64_t received_at,
        object batch_sent_at,
        object batch_context,
        object client_ip,
        object skip,
        bint public=False,
    ):
        """One message per item, or None for an item the Python path must map (in
        ``skip``, a set of item ids, or outside the fast path). ``public``: a public write
        key sent the batch (``segment_to_record``'s ``public``)."""
        cdef list result = []
        cdef object item
        for item in items:
            if skip and id(item) in skip:
                result.append(None)
                continue
            try:
                result.append(
                    self._message(
                        item, received_at, batch_sent_at, batch_context, client_ip, public
                    )
                )
            except Exception:  # Slow, or a value the Python path must judge
                result.append(None)
        return result

    cdef object _message(
        self,
        object item,
        int64_t received_at,
        object batch_sent_at,
        object batch_context,
        object client_ip,
        bint public,
    ):
        cdef dict message, context, props, page, campaign
        cdef object call, customer_id, anonymous_id, event_id, sent_at, original, name
        cdef object url, referrer, ip, library_name, source, key, found
        cdef PyObject* given
        cdef int64_t sent_ms = 0, device_ms, event_time
        cdef bint has_sent = False
        cdef int event_type
        cdef _Buffer out = self.out

        if type(item) is not dict or received_at >= MAX_TIME_MS or received_at < MIN_TIME_MS:
            raise Slow()
        message = <dict>item
        call = _get(message, "type")
        if call == "track":
            name = _get(message, "event")
            if type(name) is not str or PyUnicode_GET_LENGTH(name) == 0:
                raise Slow()
            found = _get(_TRACK_TYPES, name)
            if found is not None:
                event_type = found
            elif name in self.typed_events:  # typed, but not here: e.g. a form
                raise Slow()
            elif name in self.email_actions:
                event_type = T_EMAIL_EVENT
            elif public and name in self.identity_events:  # refused by the Python path
                raise Slow()
            else:
                event_type = T_CUSTOM
        elif call == "page" or call == "screen":
            event_type = T_PAGE_VIEWED
            name = None
        elif call == "identify":
            event_type = T_IDENTIFY
            name = None
        else:
            raise Slow()

        customer_id = _ident(_get(message, "userId"))
        anonymous_id = _ident(_get(message, "anonymousId"))
        if customer_id is None and anonymous_id is None:
            raise Slow()
        context = _object(_get(message, "context"))
        if batch_context:
            context = {**batch_context, **context}
        props = _object(_get(message, "properties"))

        event_id = _get(message, "messageId")
        if type(event_id) is not str or PyUnicode_GET_LENGTH(event_id) == 0:
            raise Slow()

        given = PyDict_GetItem(message, "sentAt")
        sent_at = batch_sent_at if given is NULL else <object>given
        if sent_at is not None:
            has_sent = True
            if type(sent_at) is int:
                sent_ms = sent_at  # OverflowError beyond 64 bits: the Python path
                if sent_ms >= MAX_TIME_MS or sent_ms < MIN_TIME_MS:
                    raise Slow()
            else:
                sent_ms = self._time(sent_at)
        original = _get(message, "timestamp")
        if original is None:
            original = _get(message, "originalTimestamp")
        if original is None:
            event_time = received_at
        else:
            device_ms = self._time(original)
            event_time = received_at - (sent_ms - device_ms) if has_sent else device_ms
            if public and event_time > received_at:  # a client clock: clamped
                event_time = received_at
            elif event_time >= MAX_TIME_MS or event_time < MIN_TIME_MS:  # skew-corrected
                raise Slow()

        out.size = 0
        out.raw(self.header, len(self.header))
        out.string(<str>event_id)
        out.long(event_type)
        out.opt_string(customer_id)
        out.opt_string(anonymous_id)
        out.long(event_time)
        if has_sent:
            out.byte(2)
            out.long(sent_ms)
        else:
            out.byte(0)
        out.long(received_at)

        # source (segment._source)
        library_name = None
        source = "segment"
        found = _get(context, "library")
        if type(found) is dict:
            library_name = _get(<dict>found, "name")
        if type(library_name) is str and PyUnicode_GET_LENGTH(library_name) > 0:
            source = _get(self.library_sources, library_name)
            if source is None:
                source = "segment:" + (<str>library_name)[:64]
        out.string(<str>source)

        # context (segment._context): always present
        found = _get(context, "page")
        if type(found) is dict:
            page = <dict>found
            url = _text_or_none(_get(page, "url"))
            referrer = _text_or_none(_get(page, "referrer"))
        else:
            url = referrer = None
        if url is None:
            url = _text_or_none(_get(props, "url"))
        if referrer is None:
            referrer = _text_or_none(_get(props, "referrer"))
        ip = _text_or_none(_get(context, "ip"))
        if ip is None:
            if client_ip is not None and type(client_ip) is not str:
                raise Slow()
            ip = client_ip
        out.byte(2)
        out.opt_string(ip)
        out.opt_string(_text_or_none(_get(context, "userAgent")))
        out.opt_string(url)
        out.opt_string(referrer)
        out.opt_string(_text_or_none(_get(context, "locale")))
        out.opt_string(_text_or_none(_get(context, "timezone")))
        found = _get(context, "campaign")
        if type(found) is dict:
            campaign = <dict>found
            out.byte(2)
            for utm in self.utm:
                out.opt_string(_text_or_none(_get(campaign, utm)))
        else:
            out.byte(0)

        # payload
        if event_type == T_PRODUCT_VIEWED:
            session_id = _opt_text(_get(props, "session_id"))
            out.long(P_PRODUCT_VIEWED)
            self._product(props)
            out.opt_string(session_id)
        elif event_type == T_CART_ITEM_ADDED or event_type == T_CART_ITEM_REMOVED:
            cart_id = _opt_text(_get(props, "cart_id"))
            out.long(P_CART_ITEM_CHANGED)
            out.opt_string(cart_id)
            self._line_item(props)
        elif event_type == T_EMAIL_EVENT:
            campaign_id = _opt_text(_get(props, "campaign_id"))
            email_id = _opt_text(_get(props, "email_id"))
            link_url = _opt_text(_get(props, "link_url"))
            out.long(P_EMAIL_EVENT)
            out.long(<int64_t>self.email_actions[name])
            out.opt_string(campaign_id)
            out.opt_string(email_id)
            out.opt_string(link_url)
        elif event_type == T_PAGE_VIEWED:
            path = _opt_text(_get(props, "path"))
            title = _opt_text(props.get("title", _get(message, "name")))
            session_id = _opt_text(_get(props, "session_id"))
            out.long(P_PAGE_VIEWED)
            out.opt_string(path)
            out.opt_string(title)
            out.opt_string(session_id)
        elif event_type == T_IDENTIFY:
            self._identify_payload(message)
        elif event_type == T_CHECKOUT_STARTED:
            value = _first(props, "value", "revenue", "total")
            checkout_id = _opt_text(_first(props, "checkout_id", "order_id"))
            cart_id = _opt_text(_get(props, "cart_id"))
            currency = _opt_text(_get(props, "currency"))
            out.long(P_CHECKOUT_STARTED)
            out.opt_string(checkout_id)
            out.opt_string(cart_id)
            self._line_items(props)
            out.opt_double(value)
            out.opt_string(currency)
        elif event_type == T_ORDER_COMPLETED:
            order_id = _opt_text(_get(props, "order_id"))
            total = _first(props, "total", "revenue")
            if order_id is None or total is None:  # a missing id, or a total to compute
                raise Slow()
            currency = _opt_text(_get(props, "currency"))
            discount = _get(props, "discount")
            out.long(P_ORDER_COMPLETED)
            out.string(<str>order_id)
            self._line_items(props)
            out.double(_number(total))
            out.opt_string(currency)
            out.opt_double(discount)
        else:
            out.long(P_CUSTOM)
            out.string(<str>name)
            out.text_map(props)

        key = customer_id if customer_id is not None else anonymous_id
        return _tuple_new(
            self.message_type,
            (self.topic, PyUnicode_AsUTF8String(key), PyBytes_FromStringAndSize(out.data, out.size)),
        )

    cdef int _identify_payload(self, dict message) except -1:
        """``cdp.Identify`` (``segment._identify``); traits with a sign-up date are Slow
        (dates are the Python path's)."""
        cdef _Buffer out = self.out
        cdef dict traits, address
        cdef object own_context = _get(message, "context")  # not merged with the batch's
        cdef object age
        in_context = _object(
            _get(<dict>own_context, "traits") if type(own_context) is dict else None
        )
        traits = {**in_context, **_object(_get(message, "traits"))}
        if "createdAt" in traits or "created_at" in traits:
            raise Slow()
        address = _object(_get(traits, "address"))
        email = _opt_text(_get(traits, "email"))
        first_name = _opt_text(_first(traits, "firstName", "first_name"))
        last_name = _opt_text(_first(traits, "lastName", "last_name"))
        age = _get(traits, "age")
        if age is not None:
            age = _int32(age)
        out.long(P_IDENTIFY)
        out.opt_string(email)
        out.opt_string(first_name)
        out.opt_string(last_name)
        out.byte(0)  # signup_date: none (see above)
        if age is None:
            out.byte(0)
        else:
            out.byte(2)
            out.long(age)
        if address:
            country = _opt_text(_get(address, "country"))
            region = _opt_text(_get(address, "state"))
            city = _opt_text(_get(address, "city"))
            out.byte(2)
            out.opt_string(country)
            out.opt_string(region)
            out.opt_string(city)
        else:
            out.byte(0)
        out.text_map({k: v for k, v in traits.items() if k not in self.identify_traits})
        return 0

    cdef int _line_items(self, dict p) except -1:
        """``array<cdp.LineItem>`` of ``properties.products`` (``segment._line_items``)."""
        cdef _Buffer out = self.out
        cdef object products = _get(p, "products")
        cdef object item
        if products is None:
            return out.byte(0)
        if type(products) is not list:  # the Python path also takes other falsy values
            raise Slow()
        if not products:
            return out.byte(0)
        out.long(len(<list>products))
        for item in <list>products:
            if type(item) is not dict:
                raise Slow()
            self._line_item(<dict>item)
        return out.byte(0)

    cdef int _line_item(self, dict p) except -1:
        """``cdp.LineItem``: the product and its quantity (``segment._line_item``)."""
        cdef int64_t quantity = _int32(p.get("quantity", 1))
        self._product(p)
        return self.out.long(quantity)

    cdef int _product(self, dict p) except -1:
        """``cdp.Product`` of e-commerce properties (``segment._product``); an
        ``image_url`` that ``segment._image_url`` would refuse is Slow."""
        cdef object product_id, price, name, category, currency, image
        cdef _Buffer out = self.out
        if "product_id" in p:
            product_id = p["product_id"]
        elif "sku" in p:
            product_id = p["sku"]
        else:
            product_id = _get(p, "id")
        product_id = _opt_text(product_id)
        if product_id is None:
            raise Slow()
        name = _opt_text(_get(p, "name"))
        category = _opt_text(_get(p, "category"))
        currency = _opt_text(_get(p, "currency"))
        price = _get(p, "price")
        image = _get(p, "image_url")
        if image is not None:
            if type(image) is not str:
                raise Slow()
            if PyUnicode_GET_LENGTH(image) == 0:
                image = None
            else:
                image = http_url(<str>image)
                if image is None:
                    raise Slow()
        out.string(<str>product_id)
        out.opt_string(name)
        out.opt_string(category)
        out.opt_double(price)
        out.opt_string(currency)
        out.opt_string(image)
        return 0

    cdef int64_t _time(self, object value) except? -1:
        """``segment._time``'s fast path for ``YYYY-MM-DDTHH:MM:SS[.fff|.ffffff](Z|+00:00)``;
        anything else is Slow."""
        cdef Py_ssize_t length
        cdef const char* s
        cdef Py_ssize_t end
        cdef int seconds, millis
        cdef object base
        if type(value) is not str or not PyUnicode_IS_ASCII(value):
            raise Slow()
        length = PyUnicode_GET_LENGTH(value)
        if length < 20 or length > 32:
            raise Slow()
        s = PyUnicode_AsUTF8(value)
        if s[16] != b":":
            raise Slow()
        if s[length - 1] == b"Z":
            end = length - 1
        elif (
            s[length - 6] == b"+" and s[length - 5] == b"0" and s[length - 4] == b"0"
            and s[length - 3] == b":" and s[length - 2] == b"0" and s[length - 1] == b"0"
        ):
            end = length - 6
        else:
            raise Slow()
        seconds = _digits(s + 17, 2)
        if seconds < 0 or seconds > 59:
            raise Slow()
        millis = 0
        if end != 19:
            if s[19] != b"." or (end - 19 != 4 and end - 19 != 7):
                raise Slow()
            millis = _digits(s + 20, 3)
            if millis < 0 or (end - 19 == 7 and _digits(s + 23, 3) < 0):
                raise Slow()
        prefix = PyUnicode_Substring(value, 0, 16)
        base = _get(self.minutes, prefix)
        if base is None:
            base = self.minute(prefix)
            if base is None:
                raise Slow()
        return <int64_t>base + seconds * 1000 + millis
