/*
 * libusb-1.0 stand-in: one Allwinner FEL device (1f3a:efe8) per Unix socket.
 *
 * Built as libusb-1.0.so.0 and put first on LD_LIBRARY_PATH, it lets an
 * unmodified libusb client (Debian's sunxi-fel, pyusb's libusb1 backend) talk
 * to felboot's device model (python -m felboot.sim.standin_server) as if it
 * were a board on the bus. Written for felboot; types and constants come from
 * the real <libusb-1.0/libusb.h>, so the ABI is libusb's own.
 *
 * The bus, as this library presents it
 *   FELBOOT_STANDIN_SOCKETS=PATH0:PATH1:...   device i is served on PATHi.
 *   Device i: bus 1, address 10+i, port numbers (1, i+1) (port path "1-1.<i+1>"),
 *   high speed. It is on the bus while PATHi exists as a socket: the server
 *   removes it when the board leaves FEL, as a real board drops off USB.
 *   Descriptors: one configuration (value 1), interface 0 (class 0xff) with
 *   bulk OUT 0x01 and bulk IN 0x82, 512-byte packets. These numbers are our
 *   choice (not confirmed against a real ROM's descriptors): clients must read
 *   them from the descriptors, as sunxi-fel's feldev_get_endpoint() does.
 *   Control transfers are answered here (GET_STATUS, GET_DESCRIPTOR for the
 *   device and configuration); anything else stalls. Interrupt, iso and async
 *   transfers answer LIBUSB_ERROR_NOT_SUPPORTED.
 *
 * The socket wire (ours; the server side is felboot/sim/standin_server.py)
 *   libusb_open() connects, libusb_close() disconnects. Per bulk transfer:
 *   request  u8 op ('O' host->device, 'I' device->host), u8 endpoint,
 *            u32 length, u32 timeout_ms, then `length` data bytes for 'O'
 *   reply    i32 libusb status, u32 length (bytes moved), then the data for 'I'
 *   All integers little-endian. A closed or broken connection is
 *   LIBUSB_ERROR_NO_DEVICE from then on. The server answers a time-out at once
 *   with LIBUSB_ERROR_TIMEOUT; if it does not answer within timeout_ms plus a
 *   margin this side says LIBUSB_ERROR_TIMEOUT and drops the connection, so a
 *   client never blocks forever.
 *
 * FELBOOT_STANDIN_DEBUG=1 logs every call to stderr.
 */

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <libusb-1.0/libusb.h>

#define MAX_DEVICES 16
#define BUS_NUMBER 1
#define FIRST_ADDRESS 10
#define FEL_VENDOR 0x1f3a
#define FEL_PRODUCT 0xefe8
#define EP_OUT 0x01
#define EP_IN 0x82
#define BULK_PACKET 512
#define REPLY_MARGIN_MS 5000
#define NO_TIMEOUT_CAP_MS 60000
#define REQUEST_HEADER 10
#define REPLY_HEADER 8

struct libusb_context {
	int users;
};

struct libusb_device {
	int index;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct libusb_device_handle {
	struct libusb_device *dev;
	int fd; /* -1 once the connection is gone */
};

/* The whole configuration in one allocation, so free() releases it. */
struct standin_config {
	struct libusb_config_descriptor config;
	struct libusb_interface interface;
	struct libusb_interface_descriptor altsetting;
	struct libusb_endpoint_descriptor endpoints[2];
};

static struct libusb_context default_context;
static struct libusb_device devices[MAX_DEVICES];
static int device_count = -1; /* -1: FELBOOT_STANDIN_SOCKETS not read yet */

static void trace(const char *format, ...)
{
	static int enabled = -1;
	va_list args;

	if (enabled < 0) {
		const char *value = getenv("FELBOOT_STANDIN_DEBUG");
		enabled = value && *value && strcmp(value, "0") != 0;
	}
	if (!enabled)
		return;
	fputs("libusb-standin: ", stderr);
	va_start(args, format);
	vfprintf(stderr, format, args);
	va_end(args);
	fputc('\n', stderr);
}

static void read_socket_list(void)
{
	const char *list = getenv("FELBOOT_STANDIN_SOCKETS");
	const char *start = list;

	if (device_count >= 0)
		return;
	device_count = 0;
	while (start && *start && device_count < MAX_DEVICES) {
		const char *end = strchr(start, ':');
		size_t length = end ? (size_t)(end - start) : strlen(start);
		struct libusb_device *dev = &devices[device_count];

		if (length > 0 && length < sizeof(dev->path)) {
			memcpy(dev->path, start, length);
			dev->path[length] = '\0';
			dev->index = device_count++;
		}
		start = end ? end + 1 : NULL;
	}
	trace("%d device socket(s)", device_count);
}

static int device_present(const struct libusb_device *dev)
{
	struct stat info;

	return stat(dev->path, &info) == 0 && S_ISSOCK(info.st_mode);
}

/* Library ---------------------------------------------------------------- */

int LIBUSB_CALL libusb_init(libusb_context **ctx)
{
	read_socket_list();
	default_context.users++;
	if (ctx)
		*ctx = &default_context;
	trace("init");
	return LIBUSB_SUCCESS;
}

void LIBUSB_CALL libusb_exit(libusb_context *ctx)
{
	(void)ctx;
	if (default_context.users > 0)
		default_context.users--;
	trace("exit");
}

void LIBUSB_CALL libusb_set_debug(libusb_context *ctx, int level)
{
	(void)ctx;
	(void)level;
}

int LIBUSB_CALL libusb_set_option(libusb_context *ctx, enum libusb_option option, ...)
{
	(void)ctx;
	(void)option;
	return LIBUSB_SUCCESS;
}

int LIBUSB_CALL libusb_has_capability(uint32_t capability)
{
	(void)capability;
	return 0;
}

const struct libusb_version *LIBUSB_CALL libusb_get_version(void)
{
	static const struct libusb_version version = {
		1, 0, 26, 0, "-felboot-standin", "https://github.com/ (felboot libusb stand-in)"
	};
	return &version;
}

int LIBUSB_CALL libusb_setlocale(const char *locale)
{
	(void)locale;
	return LIBUSB_SUCCESS;
}

const char *LIBUSB_CALL libusb_error_name(int code)
{
	switch (code) {
	case LIBUSB_SUCCESS: return "LIBUSB_SUCCESS";
	case LIBUSB_ERROR_IO: return "LIBUSB_ERROR_IO";
	case LIBUSB_ERROR_INVALID_PARAM: return "LIBUSB_ERROR_INVALID_PARAM";
	case LIBUSB_ERROR_ACCESS: return "LIBUSB_ERROR_ACCESS";
	case LIBUSB_ERROR_NO_DEVICE: return "LIBUSB_ERROR_NO_DEVICE";
	case LIBUSB_ERROR_NOT_FOUND: return "LIBUSB_ERROR_NOT_FOUND";
	case LIBUSB_ERROR_BUSY: return "LIBUSB_ERROR_BUSY";
	case LIBUSB_ERROR_TIMEOUT: return "LIBUSB_ERROR_TIMEOUT";
	case LIBUSB_ERROR_OVERFLOW: return "LIBUSB_ERROR_OVERFLOW";
	case LIBUSB_ERROR_PIPE: return "LIBUSB_ERROR_PIPE";
	case LIBUSB_ERROR_INTERRUPTED: return "LIBUSB_ERROR_INTERRUPTED";
	case LIBUSB_ERROR_NO_MEM: return "LIBUSB_ERROR_NO_MEM";
	case LIBUSB_ERROR_NOT_SUPPORTED: return "LIBUSB_ERROR_NOT_SUPPORTED";
	default: return "LIBUSB_ERROR_OTHER";
	}
}

/* The texts libusb itself prints, so client messages read as on hardware. */
const char *LIBUSB_CALL libusb_strerror(int code)
{
	switch (code) {
	case LIBUSB_SUCCESS: return "Success";
	case LIBUSB_ERROR_IO: return "Input/Output Error";
	case LIBUSB_ERROR_INVALID_PARAM: return "Invalid parameter";
	case LIBUSB_ERROR_ACCESS: return "Access denied (insufficient permissions)";
	case LIBUSB_ERROR_NO_DEVICE: return "No such device (it may have been disconnected)";
	case LIBUSB_ERROR_NOT_FOUND: return "Entity not found";
	case LIBUSB_ERROR_BUSY: return "Resource busy";
	case LIBUSB_ERROR_TIMEOUT: return "Operation timed out";
	case LIBUSB_ERROR_OVERFLOW: return "Overflow";
	case LIBUSB_ERROR_PIPE: return "Pipe error";
	case LIBUSB_ERROR_INTERRUPTED: return "System call interrupted (perhaps due to signal)";
	case LIBUSB_ERROR_NO_MEM: return "Insufficient memory";
	case LIBUSB_ERROR_NOT_SUPPORTED: return "Operation not supported or unimplemented on this platform";
	default: return "Other error";
	}
}

/* Enumeration ------------------------------------------------------------- */

ssize_t LIBUSB_CALL libusb_get_device_list(libusb_context *ctx, libusb_device ***list)
{
	libusb_device **result;
	ssize_t found = 0;
	int i;

	(void)ctx;
	read_socket_list();
	result = calloc((size_t)device_count + 1, sizeof(*result));
	if (!result)
		return LIBUSB_ERROR_NO_MEM;
	for (i = 0; i < device_count; i++)
		if (device_present(&devices[i]))
			result[found++] = &devices[i];
	*list = result;
	trace("get_device_list: %zd", found);
	return found;
}

/* Devices live as long as the library: references need no counting. */
void LIBUSB_CALL libusb_free_device_list(libusb_device **list, int unref_devices)
{
	(void)unref_devices;
	free(list);
}

libusb_device *LIBUSB_CALL libusb_ref_device(libusb_device *dev)
{
	return dev;
}

void LIBUSB_CALL libusb_unref_device(libusb_device *dev)
{
	(void)dev;
}

libusb_device *LIBUSB_CALL libusb_get_parent(libusb_device *dev)
{
	(void)dev;
	return NULL; /* no hub is modelled */
}

uint8_t LIBUSB_CALL libusb_get_bus_number(libusb_device *dev)
{
	(void)dev;
	return BUS_NUMBER;
}

uint8_t LIBUSB_CALL libusb_get_device_address(libusb_device *dev)
{
	return (uint8_t)(FIRST_ADDRESS + dev->index);
}

uint8_t LIBUSB_CALL libusb_get_port_number(libusb_device *dev)
{
	return (uint8_t)(dev->index + 1);
}

int LIBUSB_CALL libusb_get_port_numbers(libusb_device *dev, uint8_t *ports, int ports_len)
{
	if (ports_len < 2)
		return LIBUSB_ERROR_OVERFLOW;
	ports[0] = 1;
	ports[1] = (uint8_t)(dev->index + 1);
	return 2;
}

int LIBUSB_CALL libusb_get_port_path(libusb_context *ctx, libusb_device *dev, uint8_t *path,
				     uint8_t path_length)
{
	(void)ctx;
	return libusb_get_port_numbers(dev, path, path_length);
}

int LIBUSB_CALL libusb_get_device_speed(libusb_device *dev)
{
	(void)dev;
	return LIBUSB_SPEED_HIGH;
}

int LIBUSB_CALL libusb_get_max_packet_size(libusb_device *dev, unsigned char endpoint)
{
	(void)dev;
	return endpoint == EP_OUT || endpoint == EP_IN ? BULK_PACKET : LIBUSB_ERROR_NOT_FOUND;
}

int LIBUSB_CALL libusb_get_max_iso_packet_size(libusb_device *dev, unsigned char endpoint)
{
	return libusb_get_max_packet_size(dev, endpoint);
}

/* Descriptors --------------------------------------------------------------- */

static const struct libusb_device_descriptor device_descriptor = {
	.bLength = LIBUSB_DT_DEVICE_SIZE,
	.bDescriptorType = LIBUSB_DT_DEVICE,
	.bcdUSB = 0x0200,
	.bDeviceClass = 0,
	.bMaxPacketSize0 = 64,
	.idVendor = FEL_VENDOR,
	.idProduct = FEL_PRODUCT,
	.bcdDevice = 0x0200,
	.bNumConfigurations = 1,
};

int LIBUSB_CALL libusb_get_device_descriptor(libusb_device *dev,
					     struct libusb_device_descriptor *desc)
{
	(void)dev;
	*desc = device_descriptor;
	return LIBUSB_SUCCESS;
}

static struct libusb_endpoint_descriptor bulk_endpoint(uint8_t address)
{
	struct libusb_endpoint_descriptor endpoint = {
		.bLength = LIBUSB_DT_ENDPOINT_SIZE,
		.bDescriptorType = LIBUSB_DT_ENDPOINT,
		.bEndpointAddress = address,
		.bmAttributes = LIBUSB_TRANSFER_TYPE_BULK,
		.wMaxPacketSize = BULK_PACKET,
	};
	return endpoint;
}

static const uint16_t config_total_length =
	LIBUSB_DT_CONFIG_SIZE + LIBUSB_DT_INTERFACE_SIZE + 2 * LIBUSB_DT_ENDPOINT_SIZE;

static struct libusb_config_descriptor *new_config(void)
{
	struct standin_config *all = calloc(1, sizeof(*all));

	if (!all)
		return NULL;
	all->endpoints[0] = bulk_endpoint(EP_OUT);
	all->endpoints[1] = bulk_endpoint(EP_IN);
	all->altsetting.bLength = LIBUSB_DT_INTERFACE_SIZE;
	all->altsetting.bDescriptorType = LIBUSB_DT_INTERFACE;
	all->altsetting.bNumEndpoints = 2;
	all->altsetting.bInterfaceClass = LIBUSB_CLASS_VENDOR_SPEC;
	all->altsetting.bInterfaceSubClass = LIBUSB_CLASS_VENDOR_SPEC;
	all->altsetting.bInterfaceProtocol = LIBUSB_CLASS_VENDOR_SPEC;
	all->altsetting.endpoint = all->endpoints;
	all->interface.altsetting = &all->altsetting;
	all->interface.num_altsetting = 1;
	all->config.bLength = LIBUSB_DT_CONFIG_SIZE;
	all->config.bDescriptorType = LIBUSB_DT_CONFIG;
	all->config.wTotalLength = config_total_length;
	all->config.bNumInterfaces = 1;
	all->config.bConfigurationValue = 1;
	all->config.bmAttributes = 0x80; /* bus powered */
	all->config.MaxPower = 50;	  /* 100 mA */
	all->config.interface = &all->interface;
	return &all->config;
}

int LIBUSB_CALL libusb_get_config_descriptor(libusb_device *dev, uint8_t config_index,
					     struct libusb_config_descriptor **config)
{
	(void)dev;
	if (config_index != 0)
		return LIBUSB_ERROR_NOT_FOUND;
	*config = new_config();
	return *config ? LIBUSB_SUCCESS : LIBUSB_ERROR_NO_MEM;
}

int LIBUSB_CALL libusb_get_active_config_descriptor(libusb_device *dev,
						    struct libusb_config_descriptor **config)
{
	return libusb_get_config_descriptor(dev, 0, config);
}

int LIBUSB_CALL libusb_get_config_descriptor_by_value(libusb_device *dev, uint8_t value,
						      struct libusb_config_descriptor **config)
{
	return value == 1 ? libusb_get_config_descriptor(dev, 0, config) : LIBUSB_ERROR_NOT_FOUND;
}

void LIBUSB_CALL libusb_free_config_descriptor(struct libusb_config_descriptor *config)
{
	free(config); /* the first member of its standin_config */
}

/* Opening --------------------------------------------------------------------- */

static int connect_to(const struct libusb_device *dev)
{
	struct sockaddr_un address = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memcpy(address.sun_path, dev->path, sizeof(dev->path));
	if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int LIBUSB_CALL libusb_open(libusb_device *dev, libusb_device_handle **handle)
{
	struct libusb_device_handle *opened;
	int fd = connect_to(dev);

	trace("open %s: %s", dev->path, fd < 0 ? strerror(errno) : "connected");
	if (fd < 0)
		return LIBUSB_ERROR_NO_DEVICE;
	opened = calloc(1, sizeof(*opened));
	if (!opened) {
		close(fd);
		return LIBUSB_ERROR_NO_MEM;
	}
	opened->dev = dev;
	opened->fd = fd;
	*handle = opened;
	return LIBUSB_SUCCESS;
}

libusb_device_handle *LIBUSB_CALL libusb_open_device_with_vid_pid(libusb_context *ctx,
								  uint16_t vendor_id,
								  uint16_t product_id)
{
	libusb_device_handle *handle = NULL;
	int i;

	(void)ctx;
	read_socket_list();
	errno = ENODEV; /* sunxi-fel's feldev_open() reads errno when this fails */
	if (vendor_id != FEL_VENDOR || product_id != FEL_PRODUCT)
		return NULL;
	for (i = 0; i < device_count; i++)
		if (device_present(&devices[i]) && libusb_open(&devices[i], &handle) == 0)
			return handle;
	errno = ENODEV;
	return NULL;
}

libusb_device *LIBUSB_CALL libusb_get_device(libusb_device_handle *handle)
{
	return handle->dev;
}

static void drop_connection(libusb_device_handle *handle)
{
	if (handle->fd >= 0)
		close(handle->fd);
	handle->fd = -1;
}

void LIBUSB_CALL libusb_close(libusb_device_handle *handle)
{
	if (!handle)
		return;
	trace("close %s", handle->dev->path);
	drop_connection(handle);
	free(handle);
}

int LIBUSB_CALL libusb_get_configuration(libusb_device_handle *handle, int *config)
{
	(void)handle;
	*config = 1;
	return LIBUSB_SUCCESS;
}

int LIBUSB_CALL libusb_set_configuration(libusb_device_handle *handle, int configuration)
{
	(void)handle;
	return configuration == 1 || configuration == -1 ? LIBUSB_SUCCESS : LIBUSB_ERROR_NOT_FOUND;
}

int LIBUSB_CALL libusb_claim_interface(libusb_device_handle *handle, int interface_number)
{
	(void)handle;
	return interface_number == 0 ? LIBUSB_SUCCESS : LIBUSB_ERROR_NOT_FOUND;
}

int LIBUSB_CALL libusb_release_interface(libusb_device_handle *handle, int interface_number)
{
	(void)handle;
	return interface_number == 0 ? LIBUSB_SUCCESS : LIBUSB_ERROR_NOT_FOUND;
}

int LIBUSB_CALL libusb_set_interface_alt_setting(libusb_device_handle *handle,
						 int interface_number, int alternate_setting)
{
	(void)handle;
	return interface_number == 0 && alternate_setting == 0 ? LIBUSB_SUCCESS
							       : LIBUSB_ERROR_NOT_FOUND;
}

/* No kernel driver binds a FEL device: what libusb reports for an unbound interface. */
int LIBUSB_CALL libusb_kernel_driver_active(libusb_device_handle *handle, int interface_number)
{
	(void)handle;
	return interface_number == 0 ? 0 : LIBUSB_ERROR_NOT_FOUND;
}

int LIBUSB_CALL libusb_detach_kernel_driver(libusb_device_handle *handle, int interface_number)
{
	(void)handle;
	(void)interface_number;
	return LIBUSB_ERROR_NOT_FOUND;
}

int LIBUSB_CALL libusb_attach_kernel_driver(libusb_device_handle *handle, int interface_number)
{
	(void)handle;
	(void)interface_number;
	return LIBUSB_ERROR_NOT_FOUND;
}

int LIBUSB_CALL libusb_set_auto_detach_kernel_driver(libusb_device_handle *handle, int enable)
{
	(void)handle;
	(void)enable;
	return LIBUSB_SUCCESS;
}

int LIBUSB_CALL libusb_clear_halt(libusb_device_handle *handle, unsigned char endpoint)
{
	(void)handle;
	return endpoint == EP_OUT || endpoint == EP_IN ? LIBUSB_SUCCESS : LIBUSB_ERROR_NOT_FOUND;
}

int LIBUSB_CALL libusb_reset_device(libusb_device_handle *handle)
{
	(void)handle;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}

/* Bulk transfers over the socket ------------------------------------------------ */

static void put_u32(unsigned char *out, uint32_t value)
{
	int i;

	for (i = 0; i < 4; i++)
		out[i] = (unsigned char)(value >> (8 * i));
}

static uint32_t get_u32(const unsigned char *in)
{
	return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
	       (uint32_t)in[3] << 24;
}

static int send_all(int fd, const unsigned char *data, size_t length)
{
	while (length > 0) {
		ssize_t sent = send(fd, data, length, MSG_NOSIGNAL);

		if (sent < 0 && errno == EINTR)
			continue;
		if (sent <= 0)
			return LIBUSB_ERROR_NO_DEVICE;
		data += sent;
		length -= (size_t)sent;
	}
	return LIBUSB_SUCCESS;
}

static int receive_all(int fd, unsigned char *data, size_t length, int wait_ms)
{
	while (length > 0) {
		struct pollfd ready = { .fd = fd, .events = POLLIN };
		int polled = poll(&ready, 1, wait_ms);
		ssize_t got;

		if (polled < 0 && errno == EINTR)
			continue;
		if (polled == 0)
			return LIBUSB_ERROR_TIMEOUT;
		if (polled < 0)
			return LIBUSB_ERROR_NO_DEVICE;
		got = recv(fd, data, length, 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return LIBUSB_ERROR_NO_DEVICE; /* the server closed or died */
		data += got;
		length -= (size_t)got;
	}
	return LIBUSB_SUCCESS;
}

static int bulk_over_socket(libusb_device_handle *handle, unsigned char endpoint,
			    unsigned char *data, int length, int *transferred,
			    unsigned int timeout)
{
	int is_in = (endpoint & LIBUSB_ENDPOINT_DIR_MASK) == LIBUSB_ENDPOINT_IN;
	int wait_ms = (timeout ? (int)timeout : NO_TIMEOUT_CAP_MS) + REPLY_MARGIN_MS;
	unsigned char header[REQUEST_HEADER], reply[REPLY_HEADER];
	uint32_t moved;
	int status, rc;

	header[0] = is_in ? 'I' : 'O';
	header[1] = endpoint;
	put_u32(header + 2, (uint32_t)length);
	put_u32(header + 6, timeout);
	rc = send_all(handle->fd, header, sizeof(header));
	if (rc == 0 && !is_in)
		rc = send_all(handle->fd, data, (size_t)length);
	if (rc == 0)
		rc = receive_all(handle->fd, reply, sizeof(reply), wait_ms);
	if (rc == 0) {
		moved = get_u32(reply + 4);
		if (moved > (uint32_t)length)
			rc = LIBUSB_ERROR_OVERFLOW;
		else if (is_in && moved > 0)
			rc = receive_all(handle->fd, data, moved, wait_ms);
	}
	if (rc != 0) {
		/* A lost or half-read stream cannot carry another transfer. */
		drop_connection(handle);
		return rc;
	}
	status = (int)get_u32(reply);
	*transferred = (int)moved;
	return status;
}

int LIBUSB_CALL libusb_bulk_transfer(libusb_device_handle *handle, unsigned char endpoint,
				     unsigned char *data, int length, int *transferred,
				     unsigned int timeout)
{
	int moved = 0;
	int rc;

	if (endpoint != EP_OUT && endpoint != EP_IN)
		rc = LIBUSB_ERROR_NOT_FOUND;
	else if (length < 0)
		rc = LIBUSB_ERROR_INVALID_PARAM;
	else if (handle->fd < 0)
		rc = LIBUSB_ERROR_NO_DEVICE;
	else
		rc = bulk_over_socket(handle, endpoint, data, length, &moved, timeout);
	if (transferred)
		*transferred = moved;
	trace("bulk 0x%02x len %d timeout %u: %d, moved %d", endpoint, length, timeout, rc, moved);
	return rc;
}

int LIBUSB_CALL libusb_interrupt_transfer(libusb_device_handle *handle, unsigned char endpoint,
					  unsigned char *data, int length, int *actual_length,
					  unsigned int timeout)
{
	(void)handle;
	(void)endpoint;
	(void)data;
	(void)length;
	(void)timeout;
	if (actual_length)
		*actual_length = 0;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}

/* Control transfers: the standard requests a client may ask, answered here. */
int LIBUSB_CALL libusb_control_transfer(libusb_device_handle *handle, uint8_t request_type,
					uint8_t request, uint16_t value, uint16_t index,
					unsigned char *data, uint16_t length, unsigned int timeout)
{
	uint8_t kind = (uint8_t)(value >> 8);
	unsigned char raw[64];
	size_t size = 0;

	(void)index;
	(void)timeout;
	if (handle->fd < 0)
		return LIBUSB_ERROR_NO_DEVICE;
	if (request_type == 0x80 && request == LIBUSB_REQUEST_GET_STATUS) {
		memset(raw, 0, 2);
		size = 2;
	} else if (request_type == 0x80 && request == LIBUSB_REQUEST_GET_CONFIGURATION) {
		raw[0] = 1;
		size = 1;
	} else if (request_type == 0x80 && request == LIBUSB_REQUEST_GET_DESCRIPTOR &&
		   kind == LIBUSB_DT_DEVICE) {
		const struct libusb_device_descriptor *d = &device_descriptor;
		unsigned char bytes[LIBUSB_DT_DEVICE_SIZE] = {
			d->bLength, d->bDescriptorType, d->bcdUSB & 0xff, d->bcdUSB >> 8,
			d->bDeviceClass, d->bDeviceSubClass, d->bDeviceProtocol,
			d->bMaxPacketSize0, d->idVendor & 0xff, d->idVendor >> 8,
			d->idProduct & 0xff, d->idProduct >> 8, d->bcdDevice & 0xff,
			d->bcdDevice >> 8, 0, 0, 0, d->bNumConfigurations,
		};
		memcpy(raw, bytes, sizeof(bytes));
		size = sizeof(bytes);
	} else if (request_type == 0x80 && request == LIBUSB_REQUEST_GET_DESCRIPTOR &&
		   kind == LIBUSB_DT_CONFIG) {
		unsigned char bytes[] = {
			LIBUSB_DT_CONFIG_SIZE, LIBUSB_DT_CONFIG, config_total_length & 0xff,
			config_total_length >> 8, 1, 1, 0, 0x80, 50,
			LIBUSB_DT_INTERFACE_SIZE, LIBUSB_DT_INTERFACE, 0, 0, 2,
			LIBUSB_CLASS_VENDOR_SPEC, LIBUSB_CLASS_VENDOR_SPEC,
			LIBUSB_CLASS_VENDOR_SPEC, 0,
			LIBUSB_DT_ENDPOINT_SIZE, LIBUSB_DT_ENDPOINT, EP_OUT,
			LIBUSB_TRANSFER_TYPE_BULK, BULK_PACKET & 0xff, BULK_PACKET >> 8, 0,
			LIBUSB_DT_ENDPOINT_SIZE, LIBUSB_DT_ENDPOINT, EP_IN,
			LIBUSB_TRANSFER_TYPE_BULK, BULK_PACKET & 0xff, BULK_PACKET >> 8, 0,
		};
		memcpy(raw, bytes, sizeof(bytes));
		size = sizeof(bytes);
	} else {
		return LIBUSB_ERROR_PIPE; /* a device stalls requests it does not know */
	}
	if (size > length)
		size = length;
	memcpy(data, raw, size);
	return (int)size;
}

int LIBUSB_CALL libusb_get_string_descriptor_ascii(libusb_device_handle *handle,
						   uint8_t desc_index, unsigned char *data,
						   int length)
{
	(void)handle;
	(void)desc_index;
	(void)data;
	(void)length;
	return LIBUSB_ERROR_PIPE; /* every string index is 0: there are none */
}

/* Asynchronous and isochronous I/O: not offered. --------------------------------- */

struct libusb_transfer *LIBUSB_CALL libusb_alloc_transfer(int iso_packets)
{
	size_t packets = iso_packets > 0 ? (size_t)iso_packets : 0;

	return calloc(1, sizeof(struct libusb_transfer) +
				 packets * sizeof(struct libusb_iso_packet_descriptor));
}

void LIBUSB_CALL libusb_free_transfer(struct libusb_transfer *transfer)
{
	if (transfer && (transfer->flags & LIBUSB_TRANSFER_FREE_BUFFER))
		free(transfer->buffer);
	free(transfer);
}

int LIBUSB_CALL libusb_submit_transfer(struct libusb_transfer *transfer)
{
	(void)transfer;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}

int LIBUSB_CALL libusb_cancel_transfer(struct libusb_transfer *transfer)
{
	(void)transfer;
	return LIBUSB_ERROR_NOT_SUPPORTED;
}

int LIBUSB_CALL libusb_handle_events(libusb_context *ctx)
{
	(void)ctx;
	return LIBUSB_SUCCESS;
}

int LIBUSB_CALL libusb_handle_events_timeout(libusb_context *ctx, struct timeval *tv)
{
	(void)ctx;
	(void)tv;
	return LIBUSB_SUCCESS;
}

int LIBUSB_CALL libusb_handle_events_completed(libusb_context *ctx, int *completed)
{
	(void)ctx;
	(void)completed;
	return LIBUSB_SUCCESS;
}
